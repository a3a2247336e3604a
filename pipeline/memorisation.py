"""DVC stage memorisation@<dataset>: the copy rate's controls (aebench/memorisation.py).

Every run's reconstructions of a fixed subset of training images (as many as every sampler
draws), scored for copying and MSE, and the copy rate of the training images themselves. Writes
memorisation/<dataset>/<variant>/<seed>/metrics.json and memorisation/<dataset>/reference.json.
A stage of its own, so that adding a check never re-runs an evaluation.
"""

import argparse
from pathlib import Path

from aebench import settings
from aebench.dataset_scoring import load_dataset_scoring
from aebench.io import atomic_dir, write_json
from aebench.memorisation import control_indices, reconstruction_control, training_images_rate
from aebench.models import load_checkpoint
from aebench.runtime import make_deterministic, pick_device
from aebench.stage import run_stage
from aebench.stage_settings import settings_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset")
    parser.add_argument("--root", default=".", help="where models/ are read, memorisation/ goes")
    args = parser.parse_args()
    root = Path(args.root)
    # a section with its own models (--root full_mnist) has its own settings folder
    spec = settings.read(settings_path("memorisation", args.dataset, section=root))
    cfg, machine = spec["evaluate"], spec["machine"]
    make_deterministic(cfg["seed"], machine["threads"])
    device = pick_device(machine["device"])
    loaded = load_dataset_scoring(args.dataset, cfg["batch_size"], device)
    n = loaded.reference_count  # as many training images as every sampler draws
    subset = control_indices(len(loaded.train.images), n, cfg["seed"])
    images = loaded.train.images[subset]
    scorer = loaded.scorer
    train_features, held_out = scorer.train_features, scorer.test_features

    with atomic_dir(root / "memorisation" / args.dataset) as out:
        reference = {
            "training_images_copy_rate": training_images_rate(train_features, held_out, subset),
            "images": n,
        }
        write_json(out / "reference.json", reference)
        for run in spec["runs"]:
            variant, seed = run["variant"], run["seed"]
            model = load_checkpoint(
                root / "models" / args.dataset / variant / str(seed) / "model.pt", device
            )
            metrics = reconstruction_control(
                model, images, scorer.featurize, train_features, held_out, cfg["batch_size"]
            )
            write_json(out / variant / str(seed) / "metrics.json", {"metrics": metrics})
            shown = ", ".join(f"{key}={value:.4g}" for key, value in metrics.items())
            print(f"{args.dataset}/{variant}/{seed}: {shown}")


if __name__ == "__main__":
    run_stage(main)
