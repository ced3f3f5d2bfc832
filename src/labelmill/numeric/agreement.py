"""Agreement between annotators on nominal labels: Cohen's kappa (two annotators), Fleiss' kappa (a fixed
number of ratings per item; statsmodels') and Krippendorff's alpha (any number of ratings per item, missing
allowed; the `krippendorff` package's).

Labels are any hashable values (a multi-label or span answer is compared as its JSON text, so two
annotators agree on such a row only when their answers are equal).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two annotators over the same items; None with no item, 1.0 when both always give
    one and the same label."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa needs two label lists of the same length")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa (statsmodels'): each item holds the labels its raters gave; every item needs the same
    number of ratings (at least two). Items with another count are left out; None if none is left."""
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    if not items:
        return None
    m = Counter(len(x) for x in items if len(x) >= 2).most_common(1)
    if not m:
        return None
    raters = m[0][0]
    kept = [list(x) for x in items if len(x) == raters]
    categories = sorted({label for x in kept for label in x}, key=repr)
    if len(categories) == 1:  # one label only: no chance agreement to beat (statsmodels divides 0 by 0)
        return 1.0
    index = {c: j for j, c in enumerate(categories)}
    counts = np.zeros((len(kept), len(categories)))
    for i, x in enumerate(kept):
        for label in x:
            counts[i, index[label]] += 1
    return float(statsmodels_fleiss(counts, method="fleiss"))


def krippendorff_alpha(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data (the `krippendorff` package's): each item holds the labels it got
    (any number; items with fewer than two are not pairable and left out). None when fewer than two
    ratings can be paired; 1.0 when every rating is the same label."""
    import krippendorff

    units = [list(x) for x in items if len(x) >= 2]
    if not units:
        return None
    categories = sorted({label for x in units for label in x}, key=repr)
    if len(categories) == 1:
        return 1.0
    index = {c: j for j, c in enumerate(categories)}
    data = np.full((max(len(x) for x in units), len(units)), np.nan)  # rows: rating slots (who rated does not matter for alpha), columns: units
    for u, x in enumerate(units):
        data[: len(x), u] = [index[label] for label in x]
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal", value_domain=list(range(len(categories)))))


def agreement(ratings: Mapping[Hashable, Mapping[str, Hashable]]) -> dict[str, object]:
    """Agreement figures from {item: {annotator: label}}: items with two or more ratings, the share of
    them where everyone agrees, Cohen's kappa per pair of annotators (over the items both rated), Fleiss'
    kappa and Krippendorff's alpha."""
    shared = {item: r for item, r in ratings.items() if len(r) >= 2}
    annotators = sorted({a for r in shared.values() for a in r})  # (one who shares no item with another is in no pair)
    pairs = []
    for i, a in enumerate(annotators):
        for b in annotators[i + 1 :]:
            both = [r for r in shared.values() if a in r and b in r]  # (an item both rated has two ratings or more)
            if both:
                pairs.append({"annotators": [a, b], "items": len(both), "cohen_kappa": cohen_kappa([r[a] for r in both], [r[b] for r in both])})
    lists = [list(r.values()) for r in shared.values()]
    return {
        "items_with_overlap": len(shared),
        "full_agreement": (sum(len(set(x)) == 1 for x in lists) / len(lists)) if lists else None,
        "cohen": pairs,
        "fleiss_kappa": fleiss_kappa(lists),
        "krippendorff_alpha": krippendorff_alpha(lists),
    }
