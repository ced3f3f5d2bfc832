"""A labeling guideline as a document a person reads: an introduction, a definition per label, and
numbered rules, each rule with the errors that motivated it and who wrote it.

    # Guideline: agnews-topics
    Classify the topic of the news article.

    ## Labels
    - **World**: world affairs, politics, governments, wars, diplomacy
    - **Sci/Tech**: science, technology, computers, software, the internet, space

    ## Rules
    1. A company's product launch is Sci/Tech when the product is technology, Business otherwise.
       Example: Apple unveils a faster iPod nano with a brighter screen.
       _Evidence: 6 errors (Business -> Sci/Tech), e.g. rows 12, 40. Author: refine (qwen2.5-coder-1.5b)._

`parse` reads that Markdown back (a person may edit it by hand); `render` writes it; `prompt_text` is
what the labeler sees (the document without the examples and evidence lines, which are for people). A config points
at such a file with `guidelines_file`; the `refine` strategy keeps its versions in the project store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labelmill.errors import ConfigError

_RULE = re.compile(r"^\s*(\d+)\.\s+(.*)$")
_LABEL = re.compile(r"^\s*[-*]\s+\*\*(.+?)\*\*\s*(?::\s*(.*))?$")  # a label without a definition has no colon


@dataclass
class Rule:
    text: str
    evidence: str = ""  # the errors that motivated the rule, in words
    author: str = ""  # a person's name, or refine (the proposer model)
    examples: list[str] = field(default_factory=list)  # texts the rule decides (for people; not in the prompt)


@dataclass
class Guideline:
    title: str
    intro: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # label -> definition
    rules: list[Rule] = field(default_factory=list)

    # writing --------------------------------------------------------------------------------------
    def render(self) -> str:
        lines = [f"# Guideline: {self.title}", ""]
        if self.intro.strip():
            lines += [self.intro.strip(), ""]
        if self.labels:
            lines += ["## Labels"] + [f"- **{name}**" + (f": {definition.strip()}" if definition.strip() else "") for name, definition in self.labels.items()] + [""]
        if self.rules:
            lines.append("## Rules")
            for number, rule in enumerate(self.rules, start=1):
                lines.append(f"{number}. {rule.text.strip()}")
                notes = []
                if rule.evidence:
                    notes.append(f"Evidence: {rule.evidence.strip().rstrip('.')}.")
                if rule.author:
                    notes.append(f"Author: {rule.author.strip()}.")
                lines += [f"   Example: {' '.join(example.split())}" for example in rule.examples]
                if notes:
                    lines.append(f"   _{' '.join(notes)}_")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def prompt_text(self, list_labels: bool = True) -> str:
        """What the labeler reads: the introduction, the label definitions and the rules, no evidence. Labels
        without a definition are left out of the definitions, so a guideline with no definitions and no rules
        reads exactly as the config's `guidelines`. With definitions or rules, and `list_labels` (a task that
        lists its labels: classification, matching, relation, NER), the task's label list comes right after
        the introduction ('{labels}'), before them: a small labeler reads a rule that comes just before the
        list as a reason to say the label it names (AG News, 0.5B: 0.38 against 0.61 after the list)."""
        intro = self.intro.strip()
        extra = []
        defined = {name: definition.strip() for name, definition in self.labels.items() if definition.strip()}
        if defined:  # the task's prompt lists every label already: only the definitions are new to the labeler
            extra.append("Label definitions:\n" + "\n".join(f"- {name}: {definition}" for name, definition in defined.items()))
        if self.rules:
            extra.append("Rules:\n" + "\n".join(f"{n}. {r.text.strip()}" for n, r in enumerate(self.rules, start=1)))
        if extra and list_labels and "{labels}" not in intro:
            extra.insert(0, "Labels:\n{labels}")
        return "\n\n".join(([intro] if intro else []) + extra)

    # reading --------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Guideline:
        title, intro, labels, rules = "", [], {}, []
        section = "intro"
        for raw in text.splitlines():
            line = raw.rstrip()
            if line.startswith("# "):
                title = line[2:].removeprefix("Guideline:").strip()
                continue
            if line.startswith("## "):
                name = line[3:].strip().lower()
                section = "labels" if name.startswith("label") else "rules" if name.startswith("rule") else "other"
                continue
            if section == "intro" or section == "other":
                intro.append(line)
            elif section == "labels":
                m = _LABEL.match(line)
                if m:
                    labels[m.group(1).strip()] = (m.group(2) or "").strip()
                elif line.strip():
                    raise ConfigError(f"guideline: a line under '## Labels' is not '- **label**: definition': {line.strip()!r}")
            else:
                m = _RULE.match(line)
                note = line.strip()
                if m:
                    rules.append(Rule(m.group(2).strip()))
                elif rules and note.startswith("Example:"):
                    rules[-1].examples.append(note.removeprefix("Example:").strip())
                elif rules and len(note) > 2 and note[0] == "_" and note[-1] == "_":  # the evidence and author note
                    evidence, _, author = note[1:-1].partition("Author:")
                    rules[-1].evidence = evidence.strip().removeprefix("Evidence:").strip().rstrip(".")
                    rules[-1].author = author.strip().rstrip(".")
                elif line.strip() and rules:
                    rules[-1].text += " " + line.strip()  # a rule continued on the next line
        return cls(title=title, intro="\n".join(intro).strip(), labels=labels, rules=rules)

    @classmethod
    def from_config(cls, config) -> Guideline:
        """The starting guideline of a config: its guidelines text and its labels' descriptions."""
        return cls(title=config.name or config.task, intro=(config.guidelines or "").strip(),
                   labels={label.name: (label.description or "") for label in config.labels})
