// The faces table: one row per detected face, shared by detection (writes), clustering and persons (read/update).
export const FACES_DDL = [
  "CREATE SEQUENCE IF NOT EXISTS face_ids START 1",
  `CREATE TABLE IF NOT EXISTS faces (
    id BIGINT PRIMARY KEY DEFAULT nextval('face_ids'),
    image_id BIGINT NOT NULL,
    -- box and landmarks in source-image pixels (after EXIF orientation)
    x0 FLOAT NOT NULL, y0 FLOAT NOT NULL, x1 FLOAT NOT NULL, y1 FLOAT NOT NULL,
    landmarks FLOAT[10] NOT NULL,
    score FLOAT NOT NULL,
    -- variance of the Laplacian of the aligned 112x112 crop: low means blurred
    blur FLOAT,
    -- raw little-endian float32, L2-normalised
    embedding BLOB NOT NULL,
    person_id BIGINT,
    -- 'auto' (nearest prototype at index time), 'user', 'cluster'
    assigned_by VARCHAR,
    cluster_id INTEGER)`,
];
