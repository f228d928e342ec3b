"""The one home of every class vocabulary: names, display names, teacher prompts and thresholds.

Each class is one record, so a name, its prompts and its thresholds can never drift apart the way
parallel lists do. The LLP values are VALOR's published ones (prompt typos included, since the
thresholds were tuned for exactly those strings); see ``docs/reference.md`` sections 2 and 4.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avparse.errors import AvparseError
from avparse.utils.text import count

CLAP_PROMPT_PREFIX = "This is a sound of "
"""VALOR's CLAP prompt template: the prefix followed by the lower-cased sound name."""

CLIP_PROMPT_TEMPLATE = "A photo of {}."
"""Default CLIP prompt for vocabularies without hand-written prompts (AVE, user vocabularies)."""


THRESHOLD_ATTRIBUTES = {"visual": "clip_threshold", "audio": "clap_threshold"}
"""The :class:`EventClass` field holding each modality's teacher threshold."""


@dataclass(frozen=True)
class EventClass:
    """One event class and everything the teachers and outputs need to know about it."""

    name: str
    """Identifier used in annotation files (``Frying_(food)``)."""
    display: str
    """Human-readable name for tables, pictures and pages."""
    clip_prompt: str
    """Text the visual teacher compares frames with."""
    clap_prompt: str
    """Text the audio teacher compares sound with."""
    clip_threshold: float | None = None
    """Logit above which the visual teacher calls the class visible (None: must be calibrated)."""
    clap_threshold: float | None = None
    """Logit above which the audio teacher calls the class audible (None: must be calibrated)."""

    def threshold(self, modality: str) -> float | None:
        """The ``"visual"`` (CLIP) or ``"audio"`` (CLAP) threshold, None when not set."""
        value: float | None = getattr(self, THRESHOLD_ATTRIBUTES[modality])
        return value


@dataclass(frozen=True)
class Vocabulary:
    """An ordered class vocabulary; index = position, as in label arrays and model heads."""

    name: str
    classes: tuple[EventClass, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {c.name: i for i, c in enumerate(self.classes)}
        if len(index) != len(self.classes):
            raise AvparseError(f"vocabulary {self.name!r} has duplicate class names")
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[EventClass]:
        return iter(self.classes)

    def __getitem__(self, i: int) -> EventClass:
        return self.classes[i]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def display_names(self) -> list[str]:
        return [c.display for c in self.classes]

    def index(self, name: str) -> int:
        """Position of class ``name``; raises a one-line error for an unknown name."""
        try:
            return self._index[name]
        except KeyError:
            raise AvparseError(f"unknown class {name!r} for vocabulary {self.name!r}") from None

    def clip_prompts(self) -> list[str]:
        return [c.clip_prompt for c in self.classes]

    def clap_prompts(self) -> list[str]:
        return [c.clap_prompt for c in self.classes]

    def thresholds(self, modality: str) -> list[float]:
        """Per-class teacher thresholds for ``"visual"`` (CLIP) or ``"audio"`` (CLAP)."""
        values = [c.threshold(modality) for c in self.classes]
        missing = [c.name for c, v in zip(self.classes, values, strict=True) if v is None]
        if missing:
            raise AvparseError(
                f"vocabulary {self.name!r} has no {modality} thresholds for {missing[0]!r}"
                f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}; "
                "run `avparse calibrate` or pass a thresholds file"
            )
        return [float(v) for v in values if v is not None]

    def with_thresholds(
        self, *, visual: Sequence[float] | None = None, audio: Sequence[float] | None = None
    ) -> Vocabulary:
        """A copy with replaced thresholds (for calibrated or user-given values)."""
        for values in (visual, audio):
            if values is not None and len(values) != len(self):
                raise AvparseError(
                    f"got {count(len(values), 'threshold')} for the {len(self)} classes of {self.name!r}"
                )
        classes = tuple(
            EventClass(
                c.name,
                c.display,
                c.clip_prompt,
                c.clap_prompt,
                float(visual[i]) if visual is not None else c.clip_threshold,
                float(audio[i]) if audio is not None else c.clap_threshold,
            )
            for i, c in enumerate(self.classes)
        )
        return Vocabulary(self.name, classes)

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": [asdict(c) for c in self.classes]}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        try:
            return cls(data["name"], tuple(EventClass(**c) for c in data["classes"]))
        except (KeyError, TypeError) as exc:
            raise AvparseError(f"malformed vocabulary record: {exc}") from None

    @classmethod
    def from_names(
        cls,
        names: Sequence[str],
        *,
        name: str = "custom",
        clip_template: str = CLIP_PROMPT_TEMPLATE,
        clap_prefix: str = CLAP_PROMPT_PREFIX,
    ) -> Vocabulary:
        """An open vocabulary from free-text class names (zero-shot parsing)."""
        cleaned = [n.strip() for n in names if n.strip()]
        if not cleaned:
            raise AvparseError("the class list is empty")
        classes = tuple(
            EventClass(
                name=n,
                display=n,
                clip_prompt=clip_template.format(_with_article(n)),
                clap_prompt=clap_prefix + n.lower(),
            )
            for n in cleaned
        )
        return cls(name, classes)


def _with_article(name: str) -> str:
    lowered = name.lower()
    return f"an {lowered}" if lowered[:1] in "aeiou" else f"a {lowered}"


# --- LLP (Look, Listen and Parse): 25 classes, VALOR's prompts and thresholds ----------------
# (name, display, CLIP prompt, CLAP sound name, CLIP threshold, CLAP threshold)
_LLP_ROWS = [
    ("Speech", "Speech", "A photo of people talking.", "speech", 20, 0),
    ("Car", "Car", "A photo of a car.", "car", 15, 0),
    ("Cheering", "Cheering", "A photo of people cheering.", "cheering", 18, 1),
    ("Dog", "Dog", "A photo of a dog.", "dog", 14, 4),
    ("Cat", "Cat", "A photo of a cat.", "cat", 15, 6),
    ("Frying_(food)", "Frying (food)", "A photo of frying food.", "frying (food)", 18, -2),
    (
        "Basketball_bounce",
        "Basketball bounce",
        "A photo of people playing basketball.",
        "basketball bounce",
        18,
        4,
    ),
    ("Fire_alarm", "Fire alarm", "A photo of a fire alarm.", "fire alarm", 15, 4),
    ("Chainsaw", "Chainsaw", "A photo of a chainsaw.", "chainsaw", 15, 2),
    ("Cello", "Cello", "A photo of a cello.", "cello", 15, 2),
    ("Banjo", "Banjo", "A photo of a banjo.", "banjo", 15, 2),
    ("Singing", "Singing", "A photo of people singing.", "singing", 18, 1),
    (
        "Chicken_rooster",
        "Chicken / rooster",
        "A photo of a chicken or a rooster.",
        "chicken, rooster",
        15,
        2,
    ),
    ("Violin_fiddle", "Violin / fiddle", "A photo of a violin.", "violin fiddle", 15, 3),
    ("Vacuum_cleaner", "Vacuum cleaner", "A photo of a vaccum cleaner.", "vacuum cleaner", 15, 0),
    ("Baby_laughter", "Baby laughter", "A photo of a laughing baby.", "baby laughter", 15, 2),
    ("Accordion", "Accordion", "A photo of an accordion.", "accordion", 15, 2),
    ("Lawn_mower", "Lawn mower", "A photo of a lawnmower.", "lawn mower", 15, 2),
    ("Motorcycle", "Motorcycle", "A photo of a motorcycle.", "motorcycle", 15, 0),
    ("Helicopter", "Helicopter", "A photo of a helicopter.", "helicopter", 16, 2),
    (
        "Acoustic_guitar",
        "Acoustic guitar",
        "A photo of a acoustic guiter.",
        "acoustic guitar",
        14,
        -1,
    ),
    (
        "Telephone_bell_ringing",
        "Telephone bell ringing",
        "A photo of a ringing telephone.",
        "telephone bell ringing",
        15,
        2,
    ),
    (
        "Baby_cry_infant_cry",
        "Baby cry / infant cry",
        "A photo of a crying baby.",
        "baby cry, infant cry",
        15,
        3,
    ),
    ("Blender", "Blender", "A photo of a blender.", "blender", 15, 3),
    ("Clapping", "Clapping", "A photo of hands clapping.", "clapping", 18, 0),
]

LLP = Vocabulary(
    "llp",
    tuple(
        EventClass(name, display, clip, CLAP_PROMPT_PREFIX + sound, float(tv), float(ta))
        for name, display, clip, sound, tv, ta in _LLP_ROWS
    ),
)
"""The 25 LLP classes in their published order, with VALOR's hand-tuned thresholds."""

# --- AVE (Audio-Visual Event): 28 classes in order of first appearance in Annotations.txt ----
# The published VALOR thresholds were tuned for LLP only, so AVE thresholds start unset and are
# chosen with `avparse calibrate` (or the zero-shot default) before harvesting.
_AVE_NAMES = [
    "Church bell",
    "Male speech, man speaking",
    "Bark",
    "Fixed-wing aircraft, airplane",
    "Race car, auto racing",
    "Female speech, woman speaking",
    "Helicopter",
    "Violin, fiddle",
    "Flute",
    "Ukulele",
    "Frying (food)",
    "Truck",
    "Shofar",
    "Motorcycle",
    "Acoustic guitar",
    "Train horn",
    "Clock",
    "Banjo",
    "Goat",
    "Baby cry, infant cry",
    "Bus",
    "Chainsaw",
    "Cat",
    "Horse",
    "Toilet flush",
    "Rodents, rats, mice",
    "Accordion",
    "Mandolin",
]
_AVE_VISUAL_SUBJECT = {
    "Church bell": "a church bell",
    "Male speech, man speaking": "a man speaking",
    "Bark": "a barking dog",
    "Fixed-wing aircraft, airplane": "an airplane",
    "Race car, auto racing": "a racing car",
    "Female speech, woman speaking": "a woman speaking",
    "Baby cry, infant cry": "a crying baby",
    "Frying (food)": "frying food",
    "Violin, fiddle": "a violin",
    "Rodents, rats, mice": "a rat or a mouse",
    "Toilet flush": "a flushing toilet",
}

AVE = Vocabulary(
    "ave",
    tuple(
        EventClass(
            name=n,
            display=n,
            clip_prompt=CLIP_PROMPT_TEMPLATE.format(_AVE_VISUAL_SUBJECT.get(n, _with_article(n))),
            clap_prompt=CLAP_PROMPT_PREFIX + n.lower(),
        )
        for n in _AVE_NAMES
    ),
)
"""The 28 AVE event classes (background is label index 28 in segment arrays, not a class)."""

# --- UnAV-100: 100 classes in label_id order, names as in unav100_annotations.json ----------
# (name as in the file, CLIP subject). Display names and CLAP prompts follow from the name
# (``_unav_sound``); the file's "playing base guitar" is a bass guitar in display and prompts.
# Thresholds start unset: UnAV-100 is labelled by the temporal teacher or calibrated.
_UNAV_ROWS = [
    ("man speaking", "a man speaking"),
    ("woman speaking", "a woman speaking"),
    ("kid speaking", "a kid speaking"),
    ("male singing", "a man singing"),
    ("people laughing", "people laughing"),
    ("car passing by", "a car passing by"),
    ("baby laughter", "a laughing baby"),
    ("wind noise", "a windy landscape"),
    ("people clapping", "people clapping"),
    ("people shouting", "people shouting"),
    ("people crowd", "a crowd of people"),
    ("female singing", "a woman singing"),
    ("dog barking", "a barking dog"),
    ("playing acoustic guitar", "a person playing an acoustic guitar"),
    ("people eating", "people eating"),
    ("people cheering", "people cheering"),
    ("basketball bounce", "people playing basketball"),
    ("engine knocking", "a knocking engine"),
    ("playing tennis", "people playing tennis"),
    ("baby babbling", "a babbling baby"),
    ("striking bowling", "a bowling strike"),
    ("playing badminton", "people playing badminton"),
    ("cat meowing", "a meowing cat"),
    ("people slapping", "people slapping"),
    ("playing piano", "a person playing a piano"),
    ("baby crying", "a crying baby"),
    ("people burping", "a person burping"),
    ("orchestra", "an orchestra"),
    ("playing drum kit", "a person playing a drum kit"),
    ("playing violin", "a person playing a violin"),
    ("machine gun shooting", "a machine gun shooting"),
    ("child singing", "a child singing"),
    ("people nose blowing", "a person blowing their nose"),
    ("playing electronic organ", "a person playing an electronic organ"),
    ("people sneezing", "a person sneezing"),
    ("dog howling", "a howling dog"),
    ("skateboarding", "people skateboarding"),
    ("playing base guitar", "a person playing a bass guitar"),
    ("auto racing", "a racing car"),
    ("sea waves", "sea waves"),
    ("playing table tennis", "people playing table tennis"),
    ("people coughing", "a person coughing"),
    ("people whispering", "people whispering"),
    ("playing ukulele", "a person playing a ukulele"),
    ("sheep bleating", "a bleating sheep"),
    ("playing tabla", "a person playing a tabla"),
    ("fire truck siren", "a fire truck with its siren on"),
    ("playing volleyball", "people playing volleyball"),
    ("beat boxing", "a person beatboxing"),
    ("playing trumpet", "a person playing a trumpet"),
    ("thunder", "a thunderstorm"),
    ("playing cello", "a person playing a cello"),
    ("playing harp", "a person playing a harp"),
    ("hammering nails", "a person hammering nails"),
    ("people running", "people running"),
    ("sailing", "a sailing boat"),
    ("telephone bell ringing", "a ringing telephone"),
    ("frog croaking", "a croaking frog"),
    ("driving motorcycle", "a person riding a motorcycle"),
    ("playing cornet", "a person playing a cornet"),
    ("playing clarinet", "a person playing a clarinet"),
    ("train wheels squealing", "train wheels squealing on the rails"),
    ("playing flute", "a person playing a flute"),
    ("playing trombone", "a person playing a trombone"),
    ("playing erhu", "a person playing an erhu"),
    ("bull bellowing", "a bellowing bull"),
    ("raining", "rain falling"),
    ("skidding", "a car skidding"),
    ("chainsawing trees", "a person cutting a tree with a chainsaw"),
    ("police car siren", "a police car with its siren on"),
    ("playing saxophone", "a person playing a saxophone"),
    ("fireworks banging", "fireworks exploding"),
    ("driving buses", "a bus driving"),
    ("tap dancing", "people tap dancing"),
    ("airplane flyby", "an airplane flying by"),
    ("people whistling", "a person whistling"),
    ("train horning", "a train blowing its horn"),
    ("vacuum cleaner cleaning floors", "a vacuum cleaner cleaning a floor"),
    ("playing accordion", "a person playing an accordion"),
    ("bird chirping", "a chirping bird"),
    ("vehicle honking", "a vehicle honking"),
    ("church bell ringing", "a ringing church bell"),
    ("playing snare drum", "a person playing a snare drum"),
    ("playing synthesizer", "a person playing a synthesizer"),
    ("typing on computer keyboard", "a person typing on a computer keyboard"),
    ("singing choir", "a choir singing"),
    ("lions roaring", "a roaring lion"),
    ("people slurping", "a person slurping"),
    ("helicopter", "a helicopter"),
    ("horse clip-clop", "a horse walking"),
    ("water burbling", "a burbling stream of water"),
    ("lawn mowing", "a lawnmower mowing a lawn"),
    ("playing banjo", "a person playing a banjo"),
    ("playing zither", "a person playing a zither"),
    ("playing harmonica", "a person playing a harmonica"),
    ("people battle cry", "people shouting a battle cry"),
    ("people sobbing", "a person sobbing"),
    ("ambulance siren", "an ambulance with its siren on"),
    ("rope skipping", "a person skipping rope"),
    ("hair dryer drying", "a person using a hair dryer"),
]


def _unav_sound(name: str) -> str:
    """The sound a UnAV-100 class names, for display and the CLAP prompt."""
    return "playing bass guitar" if name == "playing base guitar" else name


UNAV = Vocabulary(
    "unav",
    tuple(
        EventClass(
            name=n,
            display=_unav_sound(n)[:1].upper() + _unav_sound(n)[1:],
            clip_prompt=CLIP_PROMPT_TEMPLATE.format(subject),
            clap_prompt=CLAP_PROMPT_PREFIX + _unav_sound(n),
        )
        for n, subject in _UNAV_ROWS
    ),
)
"""The 100 UnAV-100 classes; index = ``label_id`` of ``unav100_annotations.json``."""

VOCABULARIES: dict[str, Vocabulary] = {"llp": LLP, "ave": AVE, "unav": UNAV}


def get_vocabulary(name: str) -> Vocabulary:
    """A built-in vocabulary by task name (``llp``, ``ave`` or ``unav``)."""
    try:
        return VOCABULARIES[name]
    except KeyError:
        known = ", ".join(sorted(VOCABULARIES))
        raise AvparseError(f"unknown vocabulary {name!r} (known: {known})") from None


def load_thresholds(path: str | Path, vocab: Vocabulary) -> Vocabulary:
    """Apply a thresholds file written by ``avparse calibrate`` to ``vocab``.

    The file is JSON ``{"vocabulary": name, "visual": {class: t}, "audio": {class: t}}``; keys
    are class names so a file can never be applied in the wrong order.
    """
    from avparse.utils.jsonio import read_json_object

    path = Path(path)
    data = read_json_object(path, "thresholds file")
    result = {}
    for modality in ("visual", "audio"):
        table = data.get(modality)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise AvparseError(f"{path}: '{modality}' must map class names to thresholds")
        unknown = [k for k in table if k not in vocab]
        if unknown:
            raise AvparseError(f"{path}: unknown class {unknown[0]!r} for {vocab.name!r}")
        current = [c.threshold(modality) for c in vocab]
        values = [
            float(table[c.name]) if c.name in table else current[i] for i, c in enumerate(vocab)
        ]
        if any(v is None for v in values):
            missing = next(c.name for c, v in zip(vocab, values, strict=True) if v is None)
            raise AvparseError(f"{path}: no {modality} threshold for class {missing!r}")
        result[modality] = [float(v) for v in values if v is not None]
    return vocab.with_thresholds(**result)
