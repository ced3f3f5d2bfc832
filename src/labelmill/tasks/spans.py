"""Where a piece of text the model wrote occurs in the input: shared by every task that answers with spans."""

from __future__ import annotations


def _squeeze(text: str) -> tuple[str, list[int]]:
    """Casefolded text without whitespace, and each kept character's index in `text`."""
    chars, index = [], []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        folded = ch.casefold()
        chars.append(folded if len(folded) == 1 else ch.lower())
        index.append(i)
    return "".join(chars), index


def _is_word(ch: str) -> bool:
    return ch.isalnum()


def occurrences(text: str, mention: str) -> list[tuple[int, int]]:
    """Where `mention` occurs in `text`: exact, else ignoring case, else ignoring case and whitespace.

    Matches that cut a word in two are dropped when a whole-word match exists.
    """
    found: list[tuple[int, int]] = []
    if not mention:
        return found
    for haystack, needle in ((text, mention), (text.casefold(), mention.casefold())):
        if len(haystack) != len(text):
            break  # casefold changed lengths; the whitespace-free pass handles it
        start = haystack.find(needle)
        while start >= 0:
            found.append((start, start + len(needle)))
            start = haystack.find(needle, start + 1)
        if found:
            break
    if not found:
        squeezed, index = _squeeze(text)
        needle, _ = _squeeze(mention)
        if needle:
            start = squeezed.find(needle)
            while start >= 0:
                found.append((index[start], index[start + len(needle) - 1] + 1))
                start = squeezed.find(needle, start + 1)
    whole = [(s, e) for s, e in found if (s == 0 or not (_is_word(text[s - 1]) and _is_word(text[s]))) and (e == len(text) or not (_is_word(text[e - 1]) and _is_word(text[e])))]
    return whole or found
