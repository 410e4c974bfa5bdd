"""FGVCAircraft (docs/DATASETS.md): the official variant-level splits, read from the text files on every run."""
import os

from datasets.benchmark import SplitDataset
from datasets.toolbox import DATASET_REGISTRY, make_datum


@DATASET_REGISTRY.register()
class FGVCAircraft(SplitDataset):
    dataset_dir = "fgvc_aircraft"
    image_dir = "images"
    split_name = None  # no split_zhou file: the official split is deterministic
    docs_section = "fgvcaircraft"

    def load_splits(self):
        variants_file = self.raw_file("variants.txt")
        # label = line index, blank lines included, exactly as the reference counts them
        variants = [line for _, line in self.read_lines(variants_file, keep_blank=True)]
        cname2lab = {name: label for label, name in enumerate(variants)}
        return tuple(self.read_split_file(f"images_variant_{split}.txt", cname2lab, variants_file)
                     for split in ("train", "val", "test"))

    def read_split_file(self, name, cname2lab, variants_file):
        """Lines ``<image id> <variant>``; the id keeps its leading zeros, the variant may contain spaces."""
        path = self.raw_file(name)
        items = []
        for number, line in self.read_lines(path):
            fields = line.split(" ")
            if len(fields) < 2:
                raise self.line_error(path, number, line, "'<image id> <variant name>'")
            variant = " ".join(fields[1:])
            label = self.lookup(cname2lab, variant, f"variant (line {number} of {name})", variants_file)
            items.append(make_datum(impath=os.path.join(self.image_dir, fields[0] + ".jpg"), label=label,
                               classname=variant))
        return items
