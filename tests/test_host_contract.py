"""The contract every registered host meets, table-driven over the registry: a host is tested by being registered.

Built on a tiny CLIP, a host meets the interface (its flags tell the truth, class subsets are rows of all classes,
it trains under autocast); through train.py it lowers its loss, evaluates new classes from its slim checkpoint,
and DPC over it -- with the one DPC config, the host rebuilt from stage 1 -- keeps its new-class logits exactly at
TRAINER.DPC.WEIGHT_NEW 0. Every test is parametrised by host and the train.py runs are made per host, so
``pytest -k MyHost`` builds and trains that host alone; a host states the settings under which its loss reliably
falls here in its own trainer (``HostTrainer.contract_opts``).

This module also defines a host of its own, as a new host's module would (a config node, a model class with a
head of its own, a two-line trainer) plus its yaml: nothing else names it. It is registered for this module's
tests only: its config node would change the config, and so the identity, of every other run.
"""
import ast
import inspect
import json

import pytest
import torch
import torch.nn.functional as F
from support.hosts import CLASSNAMES, CPU_CONFIGS, build_host, random_images
from support.runs import run_train, train_argv
from torch import nn

from trainers.dpc.negative_pool import NegativePool
from trainers.dpc.trainer import DPC
from trainers.engine import TRAINER_REGISTRY, config
from trainers.engine.config import new_node
from trainers.host_api.host_trainer import HostTrainer, host_model_class, registered_hosts
from trainers.host_api.interface import HostModel
from trainers.hosts.coop import CoOpPromptLearner

pytestmark = pytest.mark.usefixtures("promptkd_teacher")  # HOSTS include PromptKD

DPC_CPU_YAML = "configs/trainers/DPC/cpu_tiny.yaml"  # one DPC config for every host: the host comes from stage 1


# ---- a new host: CoOp's prompts and a learned per-class bias, computed from each class's text features -------

def add_biased_coop_config(cfg):
    cfg.TRAINER.BIASED_COOP = new_node(N_CTX=4, CTX_INIT="a photo of a", PREC="fp16", BIAS_SCALE=1.0)


class BiasedCoOpCLIP(HostModel):
    config_node = "BIASED_COOP"

    def __init__(self, node, classnames, clip_model):
        super().__init__(clip_model)
        self.prompt_learner = CoOpPromptLearner(clip_model, classnames, node.N_CTX, node.CTX_INIT)
        # Learned, so part of the prompt set: DPC clones it into P and P' like the context.
        self.prompt_learner.bias_direction = nn.Parameter(torch.full((clip_model.text_projection.shape[1],),
                                                                     node.BIAS_SCALE))

    def encode_image(self, images):
        return self.image_encoder(images)

    def encode_text(self, class_idx=None, image_features=None):
        return self.text_encoder(self.prompt_learner(class_idx), self.prompt_learner.eot_indices(class_idx))

    def head(self, image_features, text_features):
        bias = F.normalize(text_features, dim=-1) @ self.prompt_learner.bias_direction.to(text_features.dtype)
        return super().head(image_features, text_features) + bias


class BiasedCoOp(HostTrainer):
    model_class = BiasedCoOpCLIP


@pytest.fixture(scope="module", autouse=True)
def biased_coop(tmp_path_factory):
    """What ``@config_extension``, ``@TRAINER_REGISTRY.register()`` and the host's yaml
    (configs/trainers/BiasedCoOp/cpu_tiny.yaml) do for a shipped host, undone after this module."""
    path = tmp_path_factory.mktemp("biased_coop") / "cpu_tiny.yaml"
    with open("configs/trainers/CoOp/cpu_tiny.yaml") as f:
        path.write_text(f.read().replace("  COOP:", "  BIASED_COOP:"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "_EXTENSIONS", [*config._EXTENSIONS, add_biased_coop_config])
        patch.setitem(TRAINER_REGISTRY._obj_map, "BiasedCoOp", BiasedCoOp)
        patch.setitem(CPU_CONFIGS, "BiasedCoOp", str(path))
        yield


HOSTS = [*registered_hosts(), "BiasedCoOp"]  # every registered host, and the new one


def documented_example():
    """The worked example of docs/HOSTS.md ("Adding a host"): its code block, parsed."""
    with open("docs/HOSTS.md", encoding="utf-8") as f:
        text = f.read()
    return ast.parse(text.split("```python\n# trainers/hosts/biased_coop.py\n", 1)[1].split("```", 1)[0])


def test_the_documented_example_is_this_host():
    """docs/HOSTS.md shows this module's host as a shipped module writes it (the same code, with the decorators
    this module replaces by a patch), and its imports name the modules where those names live."""
    documented = documented_example()
    definitions = {node.name: node for node in documented.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    decorators = {add_biased_coop_config: ["config_extension"], BiasedCoOpCLIP: [],
                  BiasedCoOp: ["TRAINER_REGISTRY.register()"]}
    for ours, decorated in decorators.items():
        theirs = definitions[ours.__name__]
        assert [ast.dump(d) for d in theirs.decorator_list] == [ast.dump(ast.parse(d, mode="eval").body)
                                                                for d in decorated], ours.__name__
        theirs.decorator_list = []
        assert ast.dump(theirs) == ast.dump(ast.parse(inspect.getsource(ours)).body[0]), ours.__name__
    imports = [node for node in documented.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), "docs/HOSTS.md", "exec"), {})


def test_the_new_host_is_registered_and_its_head_is_its_own():
    assert "BiasedCoOp" in registered_hosts()
    model = build_host("BiasedCoOp")
    images = random_images()
    with torch.no_grad():
        plain = HostModel.head(model, model.encode_image(images), model.encode_text())
        assert not torch.allclose(model.logits(images), plain)


# ---- the model --------------------------------------------------------------------------------------------

def reaches_the_prompts(model, output):
    """Whether ``output`` depends on the prompt set (a gradient reaches some prompt tensor)."""
    if not output.requires_grad:
        return False
    model.zero_grad()
    output.float().sum().backward()
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prompt_learner.parameters())


@pytest.mark.parametrize("host", HOSTS)
def test_the_interface_flags_tell_the_truth(host):
    model = build_host(host)
    images = random_images()
    assert reaches_the_prompts(model, model.encode_image(images)) == model.image_encoder_prompted
    features = model.encode_image(images).detach()
    depends = model.text_depends_on_image
    with torch.no_grad():
        varies = not torch.equal(model.encode_text(None, features if depends else None),
                                 model.encode_text(None, (features.flip(0) if depends else None)))
    assert varies == depends
    assert model.prompt_parameter_names() == [n for n, p in model.named_parameters() if p.requires_grad]


@torch.no_grad()
@pytest.mark.parametrize("host", HOSTS)
def test_class_subset_equals_the_rows_of_all_classes(host):
    model = build_host(host)
    subset = torch.tensor([2, 0])
    images = random_images()
    full = model.logits(images)
    assert full.shape == (3, len(CLASSNAMES))
    torch.testing.assert_close(model.logits(images, subset), full[:, subset], rtol=0, atol=1e-5)


@pytest.mark.parametrize("host", HOSTS)
def test_autocast_trains_the_host(host):
    """The amp path (autocast; bf16 on the CPU), which crashes in the reference for PromptSRC and KgCoOp."""
    model = build_host(host)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(random_images(), torch.tensor([0, 1, 2]))
    assert loss.logits.dtype == torch.bfloat16 and torch.isfinite(loss.total)
    loss.total.backward()
    assert all(p.grad is not None for p in model.prompt_learner.parameters())


# ---- through train.py -------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=HOSTS)
def stage1(request, tmp_path_factory, shapes12, coop_stage1, tiny_clip_path, biased_coop):
    """One host (the parameter) trained for 2 epochs on the base classes of the session's 12 shape classes (6 base,
    6 new, so that DPC finds negatives outside a batch of 4); made only for the hosts selected. CoOp's is the
    session's stage 1, which is this very run (asked for here, so that it is built before ``biased_coop`` extends
    the config)."""
    host = request.param
    tmp = tmp_path_factory.mktemp(f"host_{host}")
    if host == "CoOp":
        run = coop_stage1
    else:
        run = tmp / host
        run_train(*train_argv(host, shapes12, tiny_clip_path, run))
    return {"host": host, "root": shapes12, "clip": tiny_clip_path, "tmp": tmp, "run": run}


def evaluate_new(stage1, out):
    return run_train(*train_argv(stage1["host"], stage1["root"], stage1["clip"], out, subsample="new",
                                 flags=("--eval-only", "--model-dir", stage1["run"], "--load-epoch", 2)))


def first_test_images(trainer):
    return trainer.parse_batch_test(next(iter(trainer.test_loader)))[0]


@pytest.mark.slow
def test_base_to_new_from_the_slim_checkpoint(stage1):
    host, trained = stage1["host"], stage1["run"]
    base = json.loads((trained / "results.json").read_text())
    assert base["subsample_classes"] == "base" and base["n"] == 18  # 6 classes x 3 test images
    saved = torch.load(trained / host_model_class(host).checkpoint_name / "model.pth.tar-2", weights_only=True)
    assert saved["host"]["trainer"] == host  # how the host was built, for DPC's stage 2

    out = stage1["tmp"] / f"{host}_new"
    trainer = evaluate_new(stage1, out)
    assert set(saved["state_dict"]) == set(trainer.model.prompt_learner.state_dict())  # learnable tensors only
    for key, value in trainer.model.prompt_learner.state_dict().items():
        assert torch.equal(value, saved["state_dict"][key])
    new = json.loads((out / "results.json").read_text())
    assert new["subsample_classes"] == "new" and new["n"] == 18 and 0 <= new["accuracy"] <= 100
    with torch.no_grad():  # the class-dependent parts were rebuilt for the 6 new classes
        assert trainer.model_inference(first_test_images(trainer)).shape[1] == 6


@pytest.mark.slow
@pytest.mark.parametrize("host", HOSTS)
def test_training_lowers_the_loss(host, tmp_path, shapes_root, tiny_clip_path):
    opts = TRAINER_REGISTRY.get(host).contract_opts  # the host's own settings for this test
    trainer = run_train(*train_argv(host, shapes_root, tiny_clip_path, tmp_path, "OPTIM.WARMUP_EPOCH", 0, *opts,
                                    "TEST.NO_TEST", True, epochs=8, flags=("--no-train",)))
    images, labels = trainer.parse_batch_test(next(iter(trainer.test_loader)))

    def loss():
        with torch.no_grad():
            return trainer.model.loss(images, labels).total.item()
    before = loss()
    trainer.train()
    assert loss() < 0.98 * before


@pytest.mark.slow
def test_dpc_over_the_host_keeps_new_class_logits_at_weight_new_zero(stage1):
    host, tmp, root, clip_path = stage1["host"], stage1["tmp"], stage1["root"], stage1["clip"]

    def dpc(out, *opts, flags=(), subsample="base"):
        return run_train(*train_argv("DPC", root, clip_path, out, *opts, flags=flags, subsample=subsample, epochs=1,
                                     config_file=DPC_CPU_YAML, print_freq=None))

    stage2 = tmp / f"{host}_dpc"
    trained = dpc(stage2, "TRAINER.DPC.BACKBONE_DIR", str(stage1["run"]))
    assert trained.cfg.TRAINER.DPC.HOST == host
    moved = [not torch.equal(p, trained.prompts.frozen()[n]) for n, p in trained.prompts.parallel_values().items()]
    assert any(moved)  # stage 2 trained P'
    host_new = evaluate_new(stage1, tmp / f"{host}_host_new")
    wrapped = dpc(tmp / f"{host}_dpc_new", flags=("--eval-only", "--model-dir", stage2, "--load-epoch", 1),
                  subsample="new")
    images = first_test_images(host_new)
    with torch.no_grad():
        assert torch.equal(wrapped.inference_logits(images), host_new.model(images))
    accuracy = [json.loads((tmp / d / "results.json").read_text())["accuracy"]
                for d in (f"{host}_host_new", f"{host}_dpc_new")]
    assert accuracy[0] == accuracy[1]


def test_dpc_without_dhno_trains_p_prime_with_the_host_loss_and_loads_no_negative(stage1, monkeypatch):
    """TRAINER.DPC.DHNO False (the ablation's TS rows): each step is the host's own loss of P' on the anchors;
    nothing is scored, no negative pool is built and no negative image is requested."""
    host, tmp = stage1["host"], stage1["tmp"]
    negative_loads, host_losses = [], []
    monkeypatch.setattr(NegativePool, "request", lambda self, classes: negative_loads.append(classes))
    monkeypatch.setattr(NegativePool, "__init__", lambda self, *args, **kwargs: negative_loads.append("pool"))
    for method in ("score", "dhno_loss"):
        monkeypatch.setattr(DPC, method, lambda *args, **kwargs: pytest.fail("DHNO ran with DHNO off"))
    host_loss = host_model_class(host).loss
    monkeypatch.setattr(host_model_class(host), "loss",
                        lambda model, images, labels: host_losses.append(len(labels)) or host_loss(model, images,
                                                                                                   labels))
    trained = run_train("--trainer", "DPC", "--root", stage1["root"], "--seed", 1,
                        "--dataset-config-file", "configs/datasets/shapes.yaml", "--config-file", DPC_CPU_YAML,
                        "--output-dir", tmp / f"{host}_dpc_ts", "MODEL.BACKBONE.NAME", stage1["clip"],
                        "DATASET.NUM_SHOTS", 4, "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", 1,
                        "TRAINER.DPC.BACKBONE_DIR", str(stage1["run"]), "TRAINER.DPC.DHNO", False)
    assert negative_loads == [] and trained.negative_pool is None
    assert host_losses == [4] * trained.num_batches  # one host loss per step, on the 4 anchors alone
    moved = [not torch.equal(p, trained.prompts.frozen()[n]) for n, p in trained.prompts.parallel_values().items()]
    assert any(moved)
    record = json.loads((tmp / f"{host}_dpc_ts" / "results.json").read_text())
    assert record["config"]["TRAINER"]["DPC"]["DHNO"] is False
