"""Differences between two versions of a page, and the three-way merge shown when two people edit at once.

Both work on lines with :mod:`difflib`. The merge follows the classic diff3 approach: the parts of the common base
that neither side touched are kept; a part changed on one side only takes that side; a part changed differently on
both sides is a conflict, kept with both versions between markers for the person to settle.
"""

from __future__ import annotations

import difflib
from typing import Any

MINE_MARKER = "<<<<<<< Votre version"
SEPARATOR = "======="
THEIRS_MARKER = ">>>>>>> Version enregistrée entre-temps"


def _lines(text: str) -> list[str]:
    return (text or "").replace("\r\n", "\n").split("\n")


def diff_lines(old: str, new: str) -> dict[str, Any]:
    """Line by line differences: ``{"lines": [{"op", "old_no", "new_no", "text"}], "added", "removed"}``.

    ``op`` is ``equal``, ``insert`` or ``delete`` (a changed line is a delete then an insert).
    """
    old_lines, new_lines = _lines(old), _lines(new)
    lines: list[dict[str, Any]] = []
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                lines.append(
                    {
                        "op": "equal",
                        "old_no": i1 + offset + 1,
                        "new_no": j1 + offset + 1,
                        "text": old_lines[i1 + offset],
                    }
                )
            continue
        for index in range(i1, i2):
            lines.append({"op": "delete", "old_no": index + 1, "new_no": None, "text": old_lines[index]})
            removed += 1
        for index in range(j1, j2):
            lines.append({"op": "insert", "old_no": None, "new_no": index + 1, "text": new_lines[index]})
            added += 1
    return {"lines": lines, "added": added, "removed": removed}


def _sync_regions(base: list[str], mine: list[str], theirs: list[str]) -> list[tuple[int, int, int, int]]:
    """Stretches of ``base`` unchanged on both sides: (base_start, base_end, mine_start, theirs_start)."""
    mine_blocks = difflib.SequenceMatcher(None, base, mine, autojunk=False).get_matching_blocks()
    theirs_blocks = difflib.SequenceMatcher(None, base, theirs, autojunk=False).get_matching_blocks()
    regions = []
    m = t = 0
    while m < len(mine_blocks) and t < len(theirs_blocks):
        m_base, m_start, m_len = mine_blocks[m]
        t_base, t_start, t_len = theirs_blocks[t]
        start = max(m_base, t_base)
        end = min(m_base + m_len, t_base + t_len)
        if start < end:
            regions.append((start, end, m_start + (start - m_base), t_start + (start - t_base)))
        if m_base + m_len < t_base + t_len:
            m += 1
        else:
            t += 1
    regions.append((len(base), len(base), len(mine), len(theirs)))
    return regions


def merge3(base: str, mine: str, theirs: str) -> dict[str, Any]:
    """Merge ``mine`` (the edit being saved) and ``theirs`` (saved meanwhile), both made from ``base``.

    Returns ``{"text", "conflicts", "chunks"}``: ``text`` has conflict markers where both sides changed the same
    lines; ``chunks`` lists ``{"kind": "same"|"mine"|"theirs"|"conflict", "lines"|"mine"+"theirs"+"base"}``.
    """
    base_lines, mine_lines, theirs_lines = _lines(base), _lines(mine), _lines(theirs)
    chunks: list[dict[str, Any]] = []
    b = m = t = 0
    for region_base, region_end, region_mine, region_theirs in _sync_regions(
        base_lines, mine_lines, theirs_lines
    ):
        base_part = base_lines[b:region_base]
        mine_part = mine_lines[m:region_mine]
        theirs_part = theirs_lines[t:region_theirs]
        if mine_part or theirs_part or base_part:
            if mine_part == theirs_part:
                chunks.append({"kind": "same", "lines": mine_part})
            elif mine_part == base_part:
                chunks.append({"kind": "theirs", "lines": theirs_part})
            elif theirs_part == base_part:
                chunks.append({"kind": "mine", "lines": mine_part})
            else:
                chunks.append(
                    {"kind": "conflict", "base": base_part, "mine": mine_part, "theirs": theirs_part}
                )
        length = region_end - region_base
        if length:
            chunks.append({"kind": "same", "lines": base_lines[region_base:region_end]})
        b = region_end
        m = region_mine + length
        t = region_theirs + length
    text_lines: list[str] = []
    conflicts = 0
    for chunk in chunks:
        if chunk["kind"] == "conflict":
            conflicts += 1
            text_lines += [MINE_MARKER, *chunk["mine"], SEPARATOR, *chunk["theirs"], THEIRS_MARKER]
        else:
            text_lines += chunk["lines"]
    return {
        "text": "\n".join(text_lines),
        "conflicts": conflicts,
        "chunks": [c for c in chunks if _non_empty(c)],
    }


def _non_empty(chunk: dict[str, Any]) -> bool:
    return chunk["kind"] == "conflict" or bool(chunk["lines"])
