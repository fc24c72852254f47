"""The AP error split (wrong label vs imprecise box) on hand-built ground truth and detections
whose APs are worked out by hand."""
import json

import pytest

from internet_tf.evaluation.error_split import KEYS, error_split, load_ground_truth

# One 200x200 image: a small 20x20 circle (area 400 < 32²) and a large 100x100 square
# (area 10000 > 96²); no medium object.
GT = {
    "images": [{"id": 1, "width": 200, "height": 200, "file_name": "a.jpg"}],
    "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 100, 100], "area": 10000, "iscrowd": 0},
    ],
}


@pytest.fixture(scope="module")
def gt(tmp_path_factory):
    path = tmp_path_factory.mktemp("gt") / "val.json"
    path.write_text(json.dumps(GT))
    return load_ground_truth(str(path))


def _det(box, cat, score=0.9):
    return {"image_id": 1, "category_id": cat, "bbox": box, "score": score}


def test_perfect_detections_score_one_everywhere(gt):
    split = error_split(gt, [_det([10, 10, 20, 20], 1), _det([50, 50, 100, 100], 2)])
    for kind in ("class_aware", "class_agnostic"):
        for key in KEYS:
            expected = -1.0 if key == "APm" else 1.0  # no medium ground truth
            assert split[kind][key] == pytest.approx(expected), (kind, key)


def test_a_wrong_label_costs_the_class_aware_ap_only(gt):
    # The small circle found with a perfect box but called a square.
    split = error_split(gt, [_det([10, 10, 20, 20], 2), _det([50, 50, 100, 100], 2)])
    assert split["class_aware"]["APs"] == pytest.approx(0.0)
    assert split["class_agnostic"]["APs"] == pytest.approx(1.0)
    assert split["class_agnostic"]["APs75"] == pytest.approx(1.0)
    # The large range ignores the unmatched small detection (outside its area), so the
    # square's AP stays 1.
    assert split["class_aware"]["APl"] == pytest.approx(1.0)


def test_an_imprecise_box_costs_the_high_iou_ap_only(gt):
    # The circle's box shifted 4 px right: IoU = 16*20 / (2*400 - 320) = 320/480 = 0.667,
    # a match at IoU 0.5 to 0.65 (4 of the 10 thresholds), a miss from 0.7 on.
    split = error_split(gt, [_det([14, 10, 20, 20], 1), _det([50, 50, 100, 100], 2)])
    for kind in ("class_aware", "class_agnostic"):
        assert split[kind]["APs50"] == pytest.approx(1.0)
        assert split[kind]["APs75"] == pytest.approx(0.0)
        assert split[kind]["APs"] == pytest.approx(0.4)


def test_no_detections_is_zero(gt):
    split = error_split(gt, [])
    assert split["class_aware"]["AP"] == 0.0 and split["class_agnostic"]["APs"] == 0.0
