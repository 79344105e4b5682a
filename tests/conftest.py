import os

import matplotlib

matplotlib.use("Agg")  # tests never open windows
os.environ.setdefault("TQDM_DISABLE", "1")

BAD_NUMBERS = [0, -1, -0.5, float("nan"), float("inf"), float("-inf"), "10", None, True, [1]]
