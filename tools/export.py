"""Export a finished run for use outside this repository.

    python -m tools.export --model-dir RUN [--classnames A,B,C | --classnames-file F] --out classifier.pt

When the run's logits are CLIP's own scaled cosine over CLIP's own image features (CoOp, KgCoOp, DPC over them,
zero-shot CLIP), the file is a standalone classifier: the class names, their text features (fp32, normalised,
each under its DPC route), the logit scale, the CLIP model name and the preprocessing. It needs only ``torch`` and
OpenAI's ``clip`` (the README shows the lines). For hosts whose prompts enter the image tower or whose text depends
on the image (MaPLe, IVLP, PromptSRC, MMRL, CoCoOp, ...), the file holds the learned prompts and how the host was
built instead, and ``load_run(<file>)`` uses it.
"""
import argparse
import sys
import warnings

import torch

from tools.predict import add_classname_arguments, add_run_arguments, classnames_from_args, load_from_args
from trainers.inference.finished_run import PROMPTS_FORMAT, exported_prompts
from trainers.run.errors import run_reporting_bad_input

CLASSIFIER_FORMAT = "dpc-classifier/v1"


def standalone_classifier(classifier, classnames):
    """The dict a standalone classifier file holds (see the module doc)."""
    cfg, run = classifier.run.cfg, classifier.run
    routes = classifier.routes(classnames)
    return {
        "format": CLASSIFIER_FORMAT,
        "classnames": list(classnames),
        "text_features": classifier.text_features(classnames).cpu(),
        "logit_scale": classifier.logit_scale,
        "clip_model": cfg.MODEL.BACKBONE.NAME,
        "preprocess": {"size": classifier.input_size,
                       "interpolation": cfg.INPUT.INTERPOLATION,
                       "mean": list(cfg.INPUT.PIXEL_MEAN), "std": list(cfg.INPUT.PIXEL_STD)},
        "routes": dict(zip(classnames, routes)) if routes[0] else None,
        "run": {"model_dir": run.model_dir, "trainer": run.trainer, "host": run.host, "epoch": run.epoch,
                "run_id": run.record.get("run_id")},
    }


def save_clip_archive(clip_model, input_size, path):
    """CLIP as a TorchScript archive, as OpenAI ships its models: ``clip.load(<file>)`` rebuilds the model from
    the archive's weights (it reads a local file only in that format)."""
    clip_model = clip_model.float().cpu().eval()
    images = torch.zeros(1, 3, input_size, input_size)
    texts = torch.zeros(1, clip_model.context_length, dtype=torch.long)
    texts[0, 0], texts[0, 1] = 49406, 49407  # start and end of text: the end token is found by argmax
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch calls tracing deprecated; clip.load reads only it
        torch.jit.save(torch.jit.trace(clip_model, (images, texts), check_trace=False), path)


CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tools.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    add_classname_arguments(parser)
    parser.add_argument("--out", required=True, help="the file to write, e.g. classifier.pt")
    parser.add_argument("--save-clip", default="", help="also write the run's CLIP weights in the archive format "
                        "clip.load reads from a file (for local weights, such as the demo's)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    classifier = load_from_args(args)
    classnames = classnames_from_args(args)
    classnames = classifier.classnames if classnames is None else classnames
    if not classifier.standalone:
        torch.save(exported_prompts(classifier.run), args.out)
        print(f"{classifier.run.host}'s prompts enter the image tower, or its text depends on the image: no "
              f"standalone classifier. Wrote its learned prompts and host record ({PROMPTS_FORMAT}) to {args.out}; "
              f'use them with: from trainers import load_run; load_run("{args.out}")')
        return 0
    content = standalone_classifier(classifier, classnames)
    if args.save_clip:
        save_clip_archive(classifier.clip_model, classifier.input_size, args.save_clip)
        content["clip_model"] = args.save_clip
    torch.save(content, args.out)
    print(f"Wrote a standalone classifier to {args.out}: {len(classnames)} classes, CLIP {content['clip_model']}, "
          f"logit scale {content['logit_scale']:.4f}")
    pre = content["preprocess"]
    if pre["interpolation"] != "bicubic" or pre["mean"] != CLIP_MEAN or pre["std"] != CLIP_STD:
        print(f"Note: the run's preprocessing ({pre}) is not clip.load's: build it from the file's 'preprocess'")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_bad_input(main, program="python -m tools.export"))
