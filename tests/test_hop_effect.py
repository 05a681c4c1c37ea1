"""scripts/hop_effect.py: a K-second hop keeps windows 0, K, 2K, ... and the call's last window."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import hop_effect  # noqa: E402


def test_hop_scores_pick_every_kth_window_and_the_tail():
    per_call = {1: [1.0, 2.0, 3.0, 4.0, 10.0, 20.0], 2: [7.0], 3: [0.0, 10.0]}
    assert hop_effect.hop_scores(per_call, 1) == {1: 40.0 / 6, 2: 7.0, 3: 5.0}  # every window: the mean
    two = hop_effect.hop_scores(per_call, 2)
    assert two == {1: (1.0 + 3.0 + 10.0 + 20.0) / 4, 2: 7.0, 3: 5.0}  # windows 0, 2, 4 and the tail 5
    three = hop_effect.hop_scores(per_call, 3)
    assert three[1] == (1.0 + 4.0 + 20.0) / 3  # windows 0, 3 and the tail 5
