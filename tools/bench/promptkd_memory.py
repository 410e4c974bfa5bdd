"""Memory of a PromptKD step and of a DPC-over-PromptKD step at the paper's sizes, counted without a GPU.

    python -m tools.bench.promptkd_memory [--batch 8] [--dpc-images 32] [--dpc-classes 32] [--classes 1000]

``python -m tools.bench.memory`` counts every host's step, PromptKD's included, the same way; this tool adds the
PromptKD-specific breakdown (teacher, student, DPC's image and text graphs). The models are built on PyTorch's
``meta`` device (shapes and dtypes, no storage, no arithmetic): a ViT-B/16 student and a ViT-L/14 teacher with
random weights, the paper's 4 + 4 tokens and depth 9, in fp16 as on a GPU. It prints the parameters, what training
keeps per step (gradients and SGD momentum of the trained tensors), and the bytes the autograd graph saves in one
forward (the activations a backward needs), counted with ``torch.autograd.graph.saved_tensors_hooks``. The teacher
runs without a graph, so it saves nothing. On the meta device attention takes PyTorch's reference path, which keeps
the attention matrices; CUDA's fused kernels do not, so the graph figures are upper bounds. Add the CUDA context
(about 0.5 GB) and the allocator's slack.
"""
import argparse
from types import SimpleNamespace

import torch

from tools.bench.clip_shapes import VIT_B16, VIT_L14
from tools.bench.memory import GB, Counter, nbytes, random_clip
from trainers.dpc.prompts import DualPrompts
from trainers.host_api.interface import PROMPT_LEARNER
from trainers.hosts.parts.promptkd_teacher import PromptKDTeacher, freeze
from trainers.hosts.promptkd import PromptKDCLIP


def build(num_classes):
    student, teacher_clip = random_clip(VIT_B16), random_clip(VIT_L14)
    classnames = [f"class {i}" for i in range(num_classes)]
    design = SimpleNamespace(N_CTX_TEXT=4, N_CTX_VISION=4, PROMPT_DEPTH_TEXT=9, PROMPT_DEPTH_VISION=9,
                             CTX_INIT="a photo of a", ROUND_PROMPTS_FP16=False)
    teacher = freeze(PromptKDTeacher(design, classnames, teacher_clip))
    teacher.embed_dim, teacher.run_id = teacher_clip.text_projection.shape[1], None
    node = SimpleNamespace(N_CTX_VISION=4, PROMPT_DEPTH_VISION=9, KD_WEIGHT=1000.0, TEMPERATURE=1.0,
                           ROUND_PROMPTS_FP16=False)
    model = PromptKDCLIP(node, classnames, student, teacher)
    # all 77 text positions, as the reference runs them (meta tensors cannot say where the last end token is;
    # the default mode runs fewer positions, so the text figures are upper bounds for it)
    model.reference_parity = True
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(PROMPT_LEARNER + "."))
    return model


def saved_bytes(compute):
    """Bytes of the tensors autograd saves while ``compute()`` runs (``tools.bench.memory``'s count)."""
    with Counter().counting() as counter:
        compute()
    return counter.saved


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench.promptkd_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="PromptKD's batch (the paper's 8)")
    parser.add_argument("--dpc-images", type=int, default=32, help="DPC's images per step: B x (1 + negatives)")
    parser.add_argument("--dpc-classes", type=int, default=32, help="DPC's classes per step (those in the batch)")
    parser.add_argument("--classes", type=int, default=1000, help="classes of the dataset (ImageNet: 1000)")
    args = parser.parse_args(argv)
    model = build(args.classes)
    student = [p for n, p in model.named_parameters() if not n.startswith("teacher.")]
    trained = [p for p in model.prompt_learner.parameters()]
    dpc = DualPrompts(model)
    print(f"weights (fp16, as released): student CLIP + prompts {nbytes(student) / GB:.2f} GB, "
          f"teacher {nbytes(model.teacher.parameters()) / GB:.2f} GB, the class prompts' token embeddings "
          f"{nbytes(model.buffers()) / GB:.2f} GB ({args.classes} classes)")
    print(f"PromptKD trains {sum(p.numel() for p in trained):,} values: gradients and momentum "
          f"{2 * 4 * sum(p.numel() for p in trained) / 1e6:.1f} MB (fp32)")
    images = torch.empty(args.batch, 3, 224, 224, device="meta", dtype=torch.float16)
    graph = saved_bytes(lambda: model.head(model.encode_image(images), torch.empty(
        args.classes, model.teacher.embed_dim, device="meta", dtype=torch.float16)))
    print(f"PromptKD step, batch {args.batch}: the student's graph saves {graph / GB:.2f} GB; the teacher's text "
          f"features of {args.classes} classes take {args.classes * model.teacher.embed_dim * 2 / 1e6:.1f} MB")
    parallel = dpc.view(dpc.parallel_values())
    dpc_images = torch.empty(args.dpc_images, 3, 224, 224, device="meta", dtype=torch.float16)
    classes = torch.arange(args.dpc_classes)
    image_graph = saved_bytes(lambda: parallel.image_features(dpc_images))
    text_graph = saved_bytes(lambda: parallel.text_features(classes))
    all_text = saved_bytes(lambda: parallel.text_features(torch.arange(args.classes)))
    print(f"DPC step, {args.dpc_images} images and {args.dpc_classes} classes: image graph {image_graph / GB:.2f} GB, "
          f"text graph {text_graph / GB:.2f} GB (all {args.classes} classes, as the reference encodes them: "
          f"{all_text / GB:.2f} GB)")


if __name__ == "__main__":
    main()
