"""PromptKD's protocol in the pipeline: teacher run -> PromptKD student -> DPC -> tests, planned and run."""
import json
import os

from support.promptkd import TEACHER_CLIP, write_promptkd_yaml

from datasets.shapes import make_shapes_dataset
from tools.pipeline import cli as pipeline
from tools.pipeline.executors.inline import InProcessExecutor
from tools.pipeline.plan import Spec, build_plan
from tools.pipeline.runner import DONE, RAN, execute, summarize
from trainers.prompted_clip import save_tiny_clip


def argv_value(run, key):
    argv = run.argv
    return argv[argv.index(key) + 1] if key in argv else None


def test_the_plan_trains_one_teacher_per_dataset_before_its_students(tmp_path):
    runs = build_plan(Spec(host="PromptKD", root=str(tmp_path), out=str(tmp_path / "out"),
                           datasets=["caltech101", "dtd"], seeds=[1, 2, 3]), warn=lambda m: None)
    stages = [run.stage for run in runs]
    assert stages.count("teacher-train") == 2 and len(runs) == 2 + 2 * 3 * 4
    for dataset in ("caltech101", "dtd"):
        mine = [run for run in runs if run.dataset == dataset]
        teacher = mine[0]
        assert teacher.stage == "teacher-train" and teacher.trainer == "PromptSRC" and teacher.seed == 1
        assert argv_value(teacher, "--config-file").endswith("PromptSRC/vit_l14_c2_ep20_batch8_4+4ctx.yaml")
        assert "/base2new/teacher/" in teacher.output_dir
        assert argv_value(teacher, "DATASET.SUBSAMPLE_CLASSES") == "base"
        for run in mine:
            if run.trainer == "PromptKD":  # every PromptKD run, training or test, is given the teacher
                assert argv_value(run, "TRAINER.PROMPTKD.TEACHER_DIR") == teacher.output_dir
            if run.stage == "host-train":
                assert run.needs == [teacher]
                kd200 = argv_value(run, "--config-file").endswith("_kd200.yaml")
                assert kd200 == (dataset == "dtd")  # KD_WEIGHT 200 on DTD, as the reference's scripts
            if run.stage in ("host-test", "dpc-test"):  # best_val: the best checkpoint, not the last epoch
                assert run.load_epoch is None and "--load-epoch" not in run.argv
            if run.stage.startswith("dpc"):
                assert argv_value(run, "--config-file").endswith("DPC/promptkd_vit_b16_ep20_batch4.yaml")
                assert argv_value(run, "TRAINER.DPC.BACKBONE_DIR").endswith("VLPromptLearner/model-best.pth.tar")
                assert argv_value(run, "TRAINER.DPC.BACKBONE_EPOCH") == "-1"
    coop = build_plan(Spec(host="CoOp", root=str(tmp_path), out=str(tmp_path / "out"), datasets=["dtd"],
                           seeds=[1]), warn=lambda m: None)
    assert [run.stage for run in coop] == ["host-train", "host-test", "dpc-train", "dpc-test"]
    assert coop[1].load_epoch is not None


def test_the_promptkd_protocol_runs_end_to_end(tmp_path, tiny_clip_path):
    """Tiny teacher (PromptSRC on a CLIP wider than the student's) -> PromptKD -> DPC -> both new-class tests,
    planned from the pipeline's command line and run in this process."""
    root = str(tmp_path / "data")
    make_shapes_dataset(root, images_per_class=6)
    teacher_clip = save_tiny_clip(str(tmp_path / "teacher_clip.pt"), **TEACHER_CLIP)
    with open("configs/trainers/PromptSRC/cpu_tiny.yaml") as f:
        teacher_yaml = tmp_path / "teacher.yaml"
        teacher_yaml.write_text(f.read().replace("configs/demo/demo_clip.pt", teacher_clip))
    host_yaml = write_promptkd_yaml(str(tmp_path / "promptkd.yaml"), teacher_clip, "")
    out = tmp_path / "out"
    args = pipeline.build_parser().parse_args([
        "--host", "PromptKD", "--root", root, "--out", str(out), "--datasets", "configs/datasets/shapes.yaml",
        "--seeds", "1", "--shots", "2", "--host-config", host_yaml, "--teacher-config", str(teacher_yaml),
        "--dpc-config", "cpu_tiny", "--opts", "OPTIM.MAX_EPOCH", "1", "TRAIN.PRINT_FREQ", "100",
        "--host-opts", "MODEL.BACKBONE.NAME", tiny_clip_path, "TEST.FINAL_MODEL", "best_val"])
    runs = build_plan(pipeline.spec_from_args(args), warn=lambda m: None)
    assert [run.stage for run in runs] == ["teacher-train", "host-train", "host-test", "dpc-train", "dpc-test"]
    outcomes = execute(runs, executor=InProcessExecutor(), progress=False)
    assert [o.status for o in outcomes] == [RAN] * 5, summarize(outcomes)
    results = {run.stage: json.loads((tmp_path / run.output_dir / "results.json").read_text()) for run in runs}
    assert os.path.isfile(os.path.join(runs[1].output_dir, "VLPromptLearner", "model-best.pth.tar"))
    assert results["teacher-train"]["subsample_classes"] == "base"
    assert results["host-train"]["built_on"] == results["teacher-train"]["run_id"]  # made from that teacher
    # omega_n = 0: DPC's new-class accuracy is PromptKD's
    assert results["dpc-test"]["accuracy"] == results["host-test"]["accuracy"]
    assert results["dpc-test"]["subsample_classes"] == "new"
    again = execute(runs, executor=InProcessExecutor(), progress=False)
    assert [o.status for o in again] == [DONE] * 5  # every run, the teacher's included, is found finished


def test_the_tables_have_the_papers_promptkd_columns_and_leave_the_teachers_out(tmp_path):
    from support.records import finished_record
    from test_tables import PAPER, put_b2n, tables_by_method

    from tools import output_folders as layout
    from tools.tables.report import build_report
    from trainers.run.record import write_results

    put_b2n(tmp_path, "dtd", "PromptKD", 1, 85.0, 70.0)
    put_b2n(tmp_path, "dtd", "DPC_PromptKD", 1, 86.0, 70.0)
    teacher = layout.run_dir(str(tmp_path), layout.BASE2NEW, "teacher", "dtd", 16, "PromptSRC",
                             "vit_l14_c2_ep20_batch8_4+4ctx", 1)
    write_results(teacher, finished_record(90.0, "DescribableTextures", 1, "base", num_shots=16))
    tables = tables_by_method(build_report(str(tmp_path), paper=PAPER))
    assert set(tables) == {"PromptKD", "DPC_PromptKD"}  # the teacher run is no PromptSRC row
    assert tables["DPC_PromptKD"]["paper_method"] == "PromptKD+DPC"
    row = tables["PromptKD"]["rows"][0]
    assert (row["paper_base"], row["paper_new"], row["paper_hm"]) == PAPER.row("PromptKD", "DescribableTextures")
    assert PAPER.average("PromptKD") == (86.86, 80.55, 83.59)
    assert PAPER.average("PromptKD+DPC") == (87.55, 80.55, 83.91)
