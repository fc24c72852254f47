"""Plain-Python reference computations shared by tests (independent of the library)."""


def box_iou(a, b):
    """IoU of two (ymin, xmin, ymax, xmax) boxes."""
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
