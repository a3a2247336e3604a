"""DVC stage train@<dataset>-<variant>-<seed>: train one variant, keep its best checkpoint."""

import argparse
from pathlib import Path

from aebench import settings
from aebench.data import load_split, to_float, training_subset
from aebench.io import atomic_dir, write_json
from aebench.models import count_parameters, save_checkpoint
from aebench.runtime import device_name, pick_device
from aebench.stage import run_stage
from aebench.train import train_model, write_history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument(
        "--root", default=".", help="where models/, history/ and timings/ go (studies: studies)"
    )
    args = parser.parse_args()
    spec, cfg, subset_seed = settings.train_settings(args.variant)
    device = pick_device(cfg.device)
    data_dir = Path("data") / args.dataset
    images, labels = load_split(data_dir, "train")
    if spec.train_images is not None:  # a data-size point: a stratified subset, fixed seed
        images, _ = training_subset(images, labels, spec.train_images, subset_seed)
    train_images = to_float(images, device)
    val_images = to_float(load_split(data_dir, "val")[0], device)
    model, result = train_model(spec, train_images, val_images, cfg, args.seed)
    info = {
        "dataset": args.dataset,
        "variant": args.variant,
        "seed": args.seed,
        "parameters": count_parameters(model),
        **result.convergence.as_dict(),
        "max_epochs": cfg.max_epochs,
        "batch_size": cfg.batch_size,
        "threads": cfg.threads,
        "precision": cfg.precision,
        "device": result.device,
        "device_name": device_name(result.device),
    }
    run = Path(args.dataset) / args.variant / str(args.seed)
    root = Path(args.root)
    with atomic_dir(root / "models" / run) as out:
        save_checkpoint(model, out / "model.pt", extra={"seed": args.seed})
        write_json(out / "train.json", info)
    write_history(root / "history" / run.with_suffix(".csv"), result.history)
    # Wall-clock time only here: no stage depends on timings/, so it never triggers a rerun.
    write_json(
        root / "timings" / "train" / run.with_suffix(".json"),
        {"train_seconds": result.seconds, "epochs": result.convergence.stop_epoch},
    )
    convergence = result.convergence
    print(
        f"{run}: best epoch {convergence.best_epoch} of {convergence.stop_epoch} "
        f"(stopped by {convergence.stop_reason}), val loss {convergence.best_val_loss:.3f}, "
        f"{result.seconds:.1f} s on {result.device}"
    )


if __name__ == "__main__":
    run_stage(main)
