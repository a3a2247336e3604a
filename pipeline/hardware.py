"""DVC stage hardware: record the hardware class the training and evaluation stages depend on."""

from pathlib import Path

from aebench import settings
from aebench.hardware import record_text
from aebench.io import write_text
from aebench.stage import run_stage


def main() -> None:
    machine = settings.machine()
    record = record_text(machine["device"], machine["threads"])
    write_text(Path("hardware.json"), record)
    print(f"hardware: {' '.join(record.split())}")


if __name__ == "__main__":
    run_stage(main)
