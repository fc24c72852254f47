"""benchmarks/profile_step.py: an op's stage from its graph name, trace event names,
per-step sums, and the name scopes it puts around the package's pure functions (every one
still exists; ops traced inside carry the scope; the package is restored afterwards)."""
import importlib.util
import os
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # profile_step imports common lazily
spec = importlib.util.spec_from_file_location("profile_step", os.path.join(ROOT, "benchmarks", "profile_step.py"))
profile_step = importlib.util.module_from_spec(spec)
spec.loader.exec_module(profile_step)
sys.path.pop(0)


def test_stage_of_names():
    stage_of = profile_step.stage_of
    assert stage_of("gradient_tape/box_head_1/fc1_1/Tensordot/MatMul", "MatMul") == ("box_head", True)
    assert stage_of("backbone_1/resnet50_1/conv2_block1_1_conv_1/convolution", "Conv2D") == ("backbone", False)
    # the innermost stage scope wins; per-level OT layers map to their stage
    assert stage_of("intertwiner_losses/critic_5/embed_conv_1/MatMul", "MatMul") == ("critic", False)
    assert stage_of("gradient_tape/intertwiner_losses/generator_p3_1/deconv_1/x", "Conv2DBackpropInput") == \
        ("ot_generator", True)
    assert stage_of("proposals/map/while/body/_1/proposals/map/while/nms/NonMaxSuppressionV3",
                    "NonMaxSuppressionV3")[0] == "proposals"
    assert stage_of("NonMaxSuppressionV3", "NonMaxSuppressionV3") == ("proposals", False)
    assert stage_of("while/body/_3/Add", "AddV2") == (profile_step.OTHER, False)
    assert stage_of("cond/then/_40/cond/sgd/Mul_172", "Mul") == ("sgd", False)
    assert stage_of("AddN_11", "AddN") == ("gradient_sums", False)


def test_op_event_and_stage_table():
    assert profile_step.op_event("roi_align_1/DynamicStitch:DynamicStitch") == ("roi_align_1/DynamicStitch",
                                                                                "DynamicStitch")
    assert profile_step.op_event("ExecutorState::Process") is None
    assert profile_step.op_event("EagerLocalExecute: __inference_f_19") is None
    times = {("fpn_1/conv", "Conv2D"): 4e12, ("gradient_tape/fpn_1/conv", "Conv2DBackpropInput"): 2e12,
             ("Where", "Where"): 1e12}
    table = profile_step.stage_table(times, steps=2)
    assert table["fpn"] == [2.0, 1.0]
    assert table[profile_step.OTHER] == [0.5, 0.0]
    assert table[None] == {"Conv2D": 2.0, "Conv2DBackpropInput": 1.0, "Where": 0.5}
    assert profile_step.by_label(table)["FPN"] == [2.0, 1.0]


def test_stage_scopes_name_the_ops_and_restore():
    from internet_tf.ops import targets

    original = targets.rpn_targets
    anchors = tf.constant([[0.0, 0.0, 8.0, 8.0], [4.0, 4.0, 12.0, 12.0]])
    gt_boxes, gt_classes = tf.constant([[[0.0, 0.0, 8.0, 8.0]]]), tf.constant([[1]])
    with profile_step.stage_scopes() as missing:
        assert missing == []
        assert targets.rpn_targets is not original
        graph = tf.function(lambda: targets.rpn_targets(anchors, gt_boxes, gt_classes, num_samples=2)
                            ).get_concrete_function().graph
    assert targets.rpn_targets is original
    names = [op.name for op in graph.get_operations() if op.type not in ("Const", "NoOp", "Identity")]
    assert names and all(n.startswith("rpn_targets/") for n in names)
