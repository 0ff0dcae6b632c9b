// The hosts file `imgd deploy` reads: what a hand-written one holds (comments, blank lines, CRLF) is read, and a row
// deploy could not act on safely is refused with its line before any host is touched.
import { expect, test } from "bun:test";
import { parseHostsFile } from "../../src/cluster-net/hosts-file.ts";

test("comments, blank lines and CRLF line ends are read as the rows they hold", () => {
  const hosts = parseHostsFile("# workers\r\n\r\n  a u@h1:2222 storage=/s threads=2 # the fast one\r\nb u@[::1] storage=/s path-map=/p=/mnt/p\r\n");
  expect(hosts.map((h) => [h.name, h.address, h.port, h.threads, h.pathMaps])).toEqual([
    ["a", "h1", 2222, 2, []],
    ["b", "::1", 22, undefined, ["/p=/mnt/p"]],
  ]);
});

test("a duplicate host, two rows in one remote dir, a port out of range, a key given twice or a bad path map is refused with its line", () => {
  const refused = (text: string) => {
    try {
      parseHostsFile(text, "hosts");
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error(`accepted: ${text}`);
  };
  expect(refused("a u@h storage=/s\n\na u@h2 storage=/s")).toBe("hosts:3: host a is already on line 1");
  expect(refused("a u@h storage=/s\nb u@h:22 storage=/t")).toBe("hosts:2: b runs in the same dir as line 1 (u@h:22, dir=.imgd); give it another dir=");
  expect(parseHostsFile("a u@h storage=/s\nb u@h storage=/s dir=.imgd-b")).toHaveLength(2);
  for (const port of ["0", "65536", "99999"]) expect(refused(`a u@h:${port} storage=/s`)).toBe(`hosts:1: port ${port} is not between 1 and 65535`);
  expect(refused("a u@h storage=/s storage=/t")).toBe("hosts:1: storage= is given twice");
  expect(refused("a u@h storage=/s path-map=/photos")).toBe('hosts:1: --path-map takes FROM=TO, got "/photos"');
});
