"""``python -m dmlbook.distributed``: one worker (as torchrun starts it, or the launcher)."""

from .workers import main

if __name__ == "__main__":
    main()
