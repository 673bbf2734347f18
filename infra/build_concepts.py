"""Build the concept vocabulary (`function/autotagger/concepts.json`) from WordNet 3.0.

    python infra/build_concepts.py [--data-noun /usr/share/wordnet/data.noun] [--out FILE]
    python infra/build_concepts.py --check      # exit 1 when the shipped file is not current

Each of the 1000 ImageNet classes is keyed by its wnid (`n` + its WordNet noun offset), never by
its label (`crane` is a bird at 134 and a machine at 517). A class's ancestors are the union over
every path up WordNet's hypernym DAG, ordinary (`@`) and instance (`@i`) hypernyms alike: 38
classes have two parents, and `dog` itself has two (canine, domestic animal).

Two curated lists below turn that tree into tags people search by:

- `OVERRIDES` re-parents the few synsets whose WordNet sense is not what the ImageNet pictures
  show (`plate` is "a main course", `cup` "a punch", `web_site` "a computer"), or whose place
  contradicts the everyday word (a bus is a vehicle; a drink is not food). Each says why.
- `CONCEPTS` is what gets scored: a wnid and the everyday name written as the tag. Left out on
  purpose: abstract ancestors (entity, object, whole, artifact, instrumentality, ...), and any
  concept with a single leaf (it would say nothing the leaf's own label does not); the build
  refuses one with fewer than two leaves, two concepts with the same leaves, a name that is not
  tag-safe, and a name that is also an ImageNet label.

The output is deterministic (sorted, fixed formatting): `tests/unit/test_concepts.py` regenerates it
from the installed `data.noun` (Debian's `wordnet-base`) and compares byte for byte. Its
`version` is a digest of the vocabulary itself, so any change to the lists or to WordNet gives a
new version, which every document records.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_NOUN = Path("/usr/share/wordnet/data.noun")
CLASS_INDEX = ROOT / "function" / "autotagger" / "model" / "imagenet_class_index.json"
OUT = ROOT / "function" / "autotagger" / "concepts.json"
SOURCE = "WordNet 3.0 (Princeton University), data.noun as shipped by Debian's wordnet-base"
HYPERNYMS = ("@", "@i")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

# (synset wnid, its parents instead of WordNet's, why). A leaf listed here takes the parents of
# the sense its pictures show; an inner synset listed here moves all the leaves below it.
OVERRIDES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    # Wrong senses: the ImageNet class's wnid names another meaning of the word.
    (
        "n07579787",
        ("n03959485",),
        "plate: WordNet's sense is 'a main course'; the class shows "
        "the dish (plate, flatware), not a food",
    ),
    (
        "n07565083",
        ("n06492939",),
        "menu: 'the dishes making up a meal'; the pictures are the printed bill of fare",
    ),
    (
        "n07930864",
        ("n03147509",),
        "cup: 'a punch served in a pitcher'; the pictures are cups (crockery, a container)",
    ),
    (
        "n06359193",
        ("n06358900",),
        "web_site: 'a computer connected to the internet'; the "
        "pictures are screenshots of web pages, not computers",
    ),
    (
        "n03529860",
        ("n03278248",),
        "home_theater: WordNet files it under theater (a building); "
        "its gloss and its pictures are television and audio equipment",
    ),
    (
        "n03026506",
        ("n03169390",),
        "Christmas_stocking: a decoration filled with presents, not clothing or footwear",
    ),
    (
        "n04162706",
        ("n04081844",),
        "seat_belt: a restraint in a car, not clothing (WordNet: "
        "safety belt > belt > accessory > clothing)",
    ),
    (
        "n04238763",
        ("n03574816",),
        "slide_rule: a hand-held calculating instrument, not a computer (WordNet: analog computer)",
    ),
    (
        "n07871810",
        ("n07557434",),
        "meat_loaf: a dish of ground meat; WordNet also files it "
        "under loaf of bread, which made it `bread`",
    ),
    # Places that contradict the everyday word.
    (
        "n02924116",
        ("n04019101", "n03791235"),
        "bus: also a motor vehicle (WordNet has only public transport, so buses were not vehicles)",
    ),
    ("n03773504", ("n04565375",), "missile: a weapon; not a vehicle (WordNet: rocket > vehicle)"),
    (
        "n07881800",
        ("n14940386",),
        "beverage: a liquid only, not food (red wine and espresso are "
        "`drink`; WordNet also files beverages under food)",
    ),
    ("n07800091", (), "feed (fodder, hay): food for livestock is not `food` to a person"),
    (
        "n07555863",
        ("n15046900", "n00021265"),
        "solid food (bread, fruit, vegetables): also "
        "food, nutrient, so `food` covers fruit and vegetables too",
    ),
    ("n02980441", ("n03385557", "n02913152"), "castle: a building too, not only a fortification"),
    (
        "n04202417",
        ("n03748162", "n02913152"),
        "shop (bakery, bookshop, ...): the pictures are shop fronts, so a building too",
    ),
)

# (wnid, everyday name). Grouped by domain; each name is written as a tag.
CONCEPTS: tuple[tuple[str, str], ...] = (
    # animals
    ("n00015388", "animal"),
    ("n01861778", "mammal"),
    ("n01317541", "pet"),
    ("n02084071", "dog"),
    ("n02121808", "cat"),
    ("n02127808", "big_cat"),
    ("n02114100", "wolf"),
    ("n02118333", "fox"),
    ("n02131653", "bear"),
    ("n02469914", "primate"),
    ("n02484322", "monkey"),
    ("n02470325", "ape"),
    ("n02329401", "rodent"),
    ("n02062017", "marine_mammal"),
    ("n01503061", "bird"),
    ("n01844917", "water_bird"),
    ("n01604330", "bird_of_prey"),
    ("n01816887", "parrot"),
    ("n02512053", "fish"),
    ("n01482330", "shark"),
    ("n01661091", "reptile"),
    ("n01726692", "snake"),
    ("n01674464", "lizard"),
    ("n01662784", "turtle"),
    ("n01696633", "crocodile"),
    ("n01639765", "frog"),
    ("n02159955", "insect"),
    ("n02274259", "butterfly"),
    ("n02164464", "beetle"),
    ("n01772222", "spider"),
    ("n01974773", "crustacean"),
    ("n01940736", "mollusk"),
    # people and plants
    ("n00007846", "person"),
    ("n00017222", "plant"),
    ("n12992868", "fungus"),
    # vehicles
    ("n04524313", "vehicle"),
    ("n02958343", "car"),
    ("n04490091", "truck"),
    ("n02924116", "bus"),
    ("n02834778", "bicycle"),
    ("n04530566", "boat"),
    ("n02686568", "aircraft"),
    # food and drink
    ("n00021265", "food"),
    ("n07705931", "fruit"),
    ("n07707451", "vegetable"),
    ("n07557434", "dish"),
    ("n07609840", "dessert"),
    ("n07679356", "bread"),
    ("n07881800", "drink"),
    # clothing
    ("n03051540", "clothing"),
    ("n03502509", "headwear"),
    ("n03380867", "footwear"),
    ("n04371563", "swimwear"),
    # home
    ("n03405725", "furniture"),
    ("n04161981", "seat"),
    ("n02729837", "appliance"),
    ("n03621049", "kitchen_utensil"),
    ("n04381994", "tableware"),
    ("n02876657", "bottle"),
    ("n02883344", "box"),
    ("n02773037", "bag"),
    ("n04447443", "toiletry"),
    # music
    ("n03800933", "musical_instrument"),
    ("n04338517", "stringed_instrument"),
    ("n04586932", "wind_instrument"),
    ("n03915437", "percussion_instrument"),
    # devices, tools, sport
    ("n03278248", "electronics"),
    ("n03082979", "computer"),
    ("n04401088", "phone"),
    ("n04437953", "timepiece"),
    ("n04451818", "tool"),
    ("n04565375", "weapon"),
    ("n04285146", "sports_equipment"),
    ("n02778669", "ball"),
    # places
    ("n02913152", "building"),
    ("n04202417", "shop"),
    ("n03953416", "place_of_worship"),
    ("n02898711", "bridge"),
    ("n03327234", "fence"),
    ("n09287968", "landscape"),
)


@dataclass(frozen=True)
class Synset:
    words: tuple[str, ...]
    parents: tuple[str, ...]  # wnids of hypernyms and instance hypernyms


def parse_data_noun(path: Path) -> dict[str, Synset]:
    """Every noun synset of a WordNet `data.noun` by wnid. A line is `offset lex_filenum ss_type
    w_cnt (word lex_id)*w_cnt p_cnt (pointer offset pos source/target)*p_cnt | gloss`; w_cnt is
    two hex digits, p_cnt three decimal ones; the license header lines start with spaces."""
    synsets: dict[str, Synset] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):
                continue
            fields = line.partition(" | ")[0].split()
            count = int(fields[3], 16)
            words = tuple(fields[4 + 2 * i] for i in range(count))
            at = 4 + 2 * count
            parents = []
            for i in range(int(fields[at])):
                symbol, offset, pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
                if symbol in HYPERNYMS and pos == "n":
                    parents.append("n" + offset)
            synsets["n" + fields[0]] = Synset(words, tuple(parents))
    return synsets


def apply_overrides(synsets: dict[str, Synset]) -> dict[str, Synset]:
    """`synsets` with the parents of every overridden synset replaced."""
    out = dict(synsets)
    for wnid, parents, _why in OVERRIDES:
        for name in (wnid, *parents):
            if name not in synsets:
                raise SystemExit(f"build_concepts: override names {name}, not in WordNet")
        out[wnid] = Synset(synsets[wnid].words, parents)
    return out


def ancestors(synsets: dict[str, Synset], wnid: str) -> set[str]:
    """Every synset above `wnid`, over all paths (the hypernym graph is a DAG)."""
    seen: set[str] = set()
    stack = list(synsets[wnid].parents)
    while stack:
        parent = stack.pop()
        if parent not in seen:
            seen.add(parent)
            stack.extend(synsets[parent].parents)
    return seen


def build(data_noun: Path = DATA_NOUN, class_index: Path = CLASS_INDEX) -> dict[str, Any]:
    """The vocabulary as a JSON-ready dict; SystemExit with the reason when a check fails."""
    raw = json.loads(class_index.read_text())
    classes = [(raw[str(i)][0], raw[str(i)][1]) for i in range(len(raw))]
    wordnet = parse_data_noun(data_noun)
    missing = [wnid for wnid, _ in classes if wnid not in wordnet]
    if missing:
        raise SystemExit(f"build_concepts: {len(missing)} classes not in WordNet: {missing[:5]}")
    synsets = apply_overrides(wordnet)
    above = [ancestors(synsets, wnid) | {wnid} for wnid, _ in classes]
    labels = {label.lower() for _, label in classes}
    concepts: dict[str, dict[str, Any]] = {}
    seen_leaves: dict[tuple[int, ...], str] = {}
    for wnid, name in CONCEPTS:
        if wnid not in wordnet or wnid in concepts:
            raise SystemExit(f"build_concepts: concept {name} ({wnid}) unknown or repeated")
        if not _NAME_RE.match(name) or name in labels:
            raise SystemExit(f"build_concepts: {name!r} is not tag-safe or is an ImageNet label")
        leaves = tuple(i for i, parents in enumerate(above) if wnid in parents)
        if len(leaves) < 2:
            raise SystemExit(f"build_concepts: {name} has {len(leaves)} leaf (at least 2)")
        if leaves in seen_leaves:
            raise SystemExit(f"build_concepts: {name} has the leaves of {seen_leaves[leaves]}")
        seen_leaves[leaves] = name
        concepts[wnid] = {"name": name, "wordnet": wordnet[wnid].words[0], "leaves": list(leaves)}
    names = [c["name"] for c in concepts.values()]
    if len(set(names)) != len(names):
        raise SystemExit("build_concepts: concept names repeat")
    digest = hashlib.sha256(json.dumps(concepts, sort_keys=True).encode()).hexdigest()
    covered = len({i for c in concepts.values() for i in c["leaves"]})
    return {
        "source": SOURCE,
        "wordnet": "3.0",
        "data_noun_sha256": hashlib.sha256(data_noun.read_bytes()).hexdigest(),
        "version": f"wordnet-3.0/{digest[:12]}",
        "classes": len(classes),
        "classes_covered": covered,
        "overrides": [
            {"wnid": wnid, "parents": list(parents), "why": why} for wnid, parents, why in OVERRIDES
        ],
        "concepts": concepts,
    }


def render(vocabulary: dict[str, Any]) -> str:
    """Fixed, diff-friendly JSON: one line per override and per concept."""
    head = {k: v for k, v in vocabulary.items() if k not in ("overrides", "concepts")}
    lines = ["{"]
    lines += [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    lines.append(' "overrides": [')
    overrides = [json.dumps(o, ensure_ascii=False) for o in vocabulary["overrides"]]
    lines += [f"  {o}," for o in overrides[:-1]] + [f"  {overrides[-1]}", " ],"]
    lines.append(' "concepts": {')
    items = [
        f"  {json.dumps(wnid)}: {json.dumps(c, ensure_ascii=False, separators=(',', ':'))}"
        for wnid, c in vocabulary["concepts"].items()
    ]
    lines += [f"{item}," for item in items[:-1]] + [items[-1], " }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-noun", type=Path, default=DATA_NOUN, help="WordNet 3.0 data.noun")
    parser.add_argument("--out", type=Path, default=OUT, help="the vocabulary file to write")
    parser.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    args = parser.parse_args(argv)
    if not args.data_noun.exists():
        raise SystemExit(
            f"build_concepts: {args.data_noun} not found (apt-get install wordnet-base)"
        )
    text = render(build(args.data_noun))
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is not current: run infra/build_concepts.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    vocabulary = json.loads(text)
    print(
        f"{args.out}: {len(vocabulary['concepts'])} concepts, "
        f"{vocabulary['classes_covered']}/{vocabulary['classes']} classes covered, "
        f"{vocabulary['version']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
