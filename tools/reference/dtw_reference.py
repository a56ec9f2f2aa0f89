"""1NN-DTW test accuracy on UCR/UEA sets, for BENCHMARKS.md: the reference beside contra where
the 2023 bake-off files have none (BasicMotions is multivariate). aeon's 1-nearest-neighbour
classifier with full-window DTW (dependent DTW on multivariate series), on the default
train/test split; GunPoint and ItalyPowerDemand check it against the bake-off's 1NN-DTW.

    python tools/reference/dtw_reference.py $CONTRA_DATA/ucr GunPoint ItalyPowerDemand BasicMotions
"""

import sys
from pathlib import Path

from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_from_ts_file


def main():
    root = Path(sys.argv[1])
    for name in sys.argv[2:]:
        x_train, y_train = load_from_ts_file(str(root / name / f"{name}_TRAIN.ts"))
        x_test, y_test = load_from_ts_file(str(root / name / f"{name}_TEST.ts"))
        clf = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw")
        clf.fit(x_train, y_train)
        acc = (clf.predict(x_test) == y_test).mean()
        print(f"{name}: 1NN-DTW test accuracy {acc:.4f} ({len(y_test)} test series)")


if __name__ == "__main__":
    main()
