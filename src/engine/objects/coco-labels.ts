// The 80 COCO class names in the order of ultralytics' coco.yaml (class id = index), which is the order every
// COCO-trained YOLOv5/v8/11 export emits its class scores in.
export const COCO_LABELS = [
  "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
  "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
  "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
  "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
  "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
  "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
  "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
  "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
  "hair drier", "toothbrush",
] as const;

export type CocoLabel = (typeof COCO_LABELS)[number];

export const PERSON: CocoLabel = "person";

/**
 * What counts as a vehicle: COCO's own "vehicle" supercategory (instances_*.json), so the count means the same as
 * in any COCO tool. It includes airplane and boat; `--has car` etc. still name single classes.
 */
export const VEHICLE_LABELS: readonly CocoLabel[] = [
  "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
];

const VEHICLES = new Set<string>(VEHICLE_LABELS);

export function isVehicle(label: string): boolean {
  return VEHICLES.has(label);
}

/** Other words a query may use: groups of classes, and Pascal VOC's / everyday names for single ones. */
export const LABEL_ALIASES: Record<string, readonly CocoLabel[]> = {
  vehicle: VEHICLE_LABELS,
  vehicles: VEHICLE_LABELS,
  people: [PERSON],
  bike: ["bicycle"],
  motorbike: ["motorcycle"],
  aeroplane: ["airplane"],
  sofa: ["couch"],
  tvmonitor: ["tv"],
  diningtable: ["dining table"],
  pottedplant: ["potted plant"],
};
