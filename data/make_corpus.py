"""Generate the synthetic demo and test corpus for textwae (``data/stories.jsonl``).

Why it exists: the default config needs a small, offline, reproducible corpus whose four
labels (praise, sarcasm, complaint, neutral) form separable modes in latent space, so the
mixture-of-Gaussians prior has something real to fit. Sarcasm deliberately reuses praise
vocabulary about bad events, so a model has to read the whole story rather than spot words.

Standard library only, deterministic for a given seed:

    python data/make_corpus.py --seed 0 --n 6000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

LABELS = ("praise", "sarcasm", "complaint", "neutral")
DEFAULT_OUT = Path(__file__).resolve().parent / "stories.jsonl"
SENTENCE_ENDS = (".", "!", "?", '."', '!"', '?"')


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Item:
    """Something a character orders, buys or books, with the grammar needed to mention it."""

    noun: str
    kind: str  # selects the adjectives and price band that suit it
    verb: str  # neutral past-tense verb for acquiring it ("ordered", "signed up for")
    det: str = "a"  # "a" picks a/an; otherwise used as-is ("some", "the", "")
    plural: bool = False


@dataclass(frozen=True)
class Place:
    """A venue, with the staff and items that plausibly belong there, so stories stay coherent."""

    name: str
    staff: tuple[str, ...]
    items: tuple[Item, ...]


def _some(noun: str, kind: str, verb: str) -> Item:
    """Plural item ("some dumplings"), so agreement uses "were" and "they"."""
    return Item(noun, kind, verb, "some", plural=True)


# The vocabulary tables are kept compact by hand, so the formatter leaves them alone.
# fmt: off
PLACES: tuple[Place, ...] = (
    Place("cafe", ("barista", "waiter"), (
        Item("latte", "drink", "ordered"),
        Item("espresso", "drink", "ordered"),
        Item("hot chocolate", "drink", "ordered"),
        Item("croissant", "food", "ordered"),
        Item("blueberry muffin", "food", "ordered"),
        Item("cheese toastie", "food", "ordered"),
    )),
    Place("library", ("librarian", "library assistant"), (
        Item("novel", "book", "borrowed"),
        Item("history book", "book", "borrowed"),
        Item("poetry collection", "book", "borrowed"),
        Item("study room", "room", "booked"),
        Item("library card", "booking", "asked for"),
    )),
    Place("hotel", ("receptionist", "porter"), (
        Item("double room", "room", "booked"),
        Item("sea view room", "room", "booked"),
        Item("breakfast", "food", "ordered", ""),
        Item("room service", "service", "ordered", ""),
        Item("late checkout", "booking", "asked for"),
    )),
    Place("train station", ("ticket clerk", "station guard"), (
        Item("return ticket", "booking", "bought"),
        Item("seat reservation", "booking", "made"),
        Item("sandwich", "food", "bought"),
        Item("coffee", "drink", "bought"),
    )),
    Place("bakery", ("baker", "shop assistant"), (
        Item("sourdough loaf", "food", "bought"),
        Item("birthday cake", "food", "ordered"),
        Item("cinnamon roll", "food", "bought"),
        Item("apple pie", "food", "bought"),
        _some("bread rolls", "food", "bought"),
    )),
    Place("garage", ("mechanic",), (
        Item("oil change", "service", "booked"),
        Item("brake repair", "service", "booked"),
        Item("car wash", "service", "paid for"),
        Item("new tyre", "object", "ordered"),
    )),
    Place("park", ("park ranger", "gardener"), (
        Item("rowing boat", "object", "rented"),
        Item("guided walk", "experience", "signed up for"),
        Item("ice cream", "food", "bought"),
    )),
    Place("museum", ("guide", "attendant"), (
        Item("guided tour", "experience", "signed up for"),
        Item("audio guide", "object", "rented"),
        Item("dinosaur exhibit", "experience", "bought a ticket for", "the"),
        Item("museum ticket", "booking", "bought"),
    )),
    Place("cinema", ("usher", "cashier"), (
        Item("film", "experience", "bought a ticket for"),
        Item("popcorn", "food", "bought", "some"),
        Item("seat", "room", "booked"),
    )),
    Place("pharmacy", ("pharmacist",), (
        Item("cough syrup", "product", "asked for", "some"),
        Item("sun cream", "product", "bought", "some"),
        Item("box of plasters", "product", "bought"),
        Item("prescription", "booking", "collected"),
    )),
    Place("post office", ("clerk", "counter assistant"), (
        Item("parcel", "delivery", "sent"),
        Item("registered letter", "delivery", "sent"),
        _some("stamps", "product", "bought"),
    )),
    Place("bookshop", ("bookseller",), (
        Item("cookbook", "book", "bought"),
        Item("travel guide", "book", "bought"),
        Item("gift voucher", "booking", "bought"),
        Item("wall calendar", "object", "bought"),
    )),
    Place("restaurant", ("waiter", "chef"), (
        Item("soup", "food", "ordered", ""),
        Item("pasta", "food", "ordered", ""),
        Item("steak", "food", "ordered"),
        Item("salad", "food", "ordered"),
        Item("chocolate pudding", "food", "ordered"),
    )),
    Place("gym", ("trainer", "receptionist"), (
        Item("spin class", "experience", "signed up for"),
        Item("membership", "booking", "bought"),
        Item("training session", "service", "booked"),
        Item("locker", "room", "rented"),
    )),
    Place("hair salon", ("hairdresser", "stylist"), (
        Item("haircut", "service", "asked for"),
        Item("beard trim", "service", "booked"),
        Item("blow-dry", "service", "booked"),
    )),
    Place("supermarket", ("cashier", "shop assistant"), (
        _some("bananas", "produce", "bought"),
        Item("bag of apples", "produce", "bought"),
        Item("milk", "product", "bought", "some"),
        Item("frozen pizza", "product", "bought"),
    )),
    Place("bank", ("bank clerk", "adviser"), (
        Item("new bank card", "booking", "ordered"),
        Item("savings account", "booking", "opened"),
        Item("loan appointment", "booking", "booked"),
        Item("currency exchange", "service", "asked for", ""),
    )),
    Place("pizzeria", ("chef", "waiter"), (
        Item("margherita pizza", "food", "ordered"),
        Item("calzone", "food", "ordered"),
        Item("garlic bread", "food", "ordered", ""),
        Item("lemonade", "drink", "ordered"),
    )),
    Place("ice cream parlour", ("server",), (
        Item("milkshake", "drink", "ordered"),
        Item("waffle cone", "food", "ordered"),
        Item("sundae", "food", "ordered"),
        Item("scoop of pistachio", "food", "ordered"),
    )),
    Place("laundrette", ("attendant",), (
        Item("service wash", "service", "paid for"),
        Item("dry cleaning", "service", "collected", "the"),
        Item("duvet wash", "service", "paid for"),
    )),
    Place("swimming pool", ("lifeguard", "receptionist"), (
        Item("swimming lesson", "experience", "booked"),
        Item("lane swim", "booking", "booked"),
        Item("sauna session", "experience", "booked"),
    )),
    Place("theatre", ("usher", "box office clerk"), (
        Item("play", "experience", "bought a ticket for"),
        Item("matinee", "experience", "bought a ticket for"),
        Item("programme", "book", "bought"),
        Item("balcony seat", "room", "booked"),
    )),
    Place("zoo", ("keeper", "guide"), (
        Item("penguin feeding", "experience", "asked about", "the"),
        Item("reptile house tour", "experience", "signed up for"),
        Item("family ticket", "booking", "bought"),
    )),
    Place("farmers' market", ("stallholder",), (
        _some("strawberries", "produce", "bought"),
        Item("basket of plums", "produce", "bought"),
        Item("honey", "product", "bought", "some"),
        Item("goat cheese", "product", "bought", "some"),
    )),
    Place("bike shop", ("mechanic", "shop assistant"), (
        Item("puncture repair", "service", "booked"),
        Item("tune-up", "service", "booked"),
        Item("bike helmet", "object", "bought"),
        Item("new chain", "object", "ordered"),
    )),
    Place("hardware store", ("shop assistant",), (
        Item("hammer", "object", "bought"),
        Item("extension lead", "object", "bought"),
        Item("tin of paint", "product", "bought"),
        Item("box of screws", "product", "bought"),
    )),
    Place("florist", ("florist",), (
        Item("bouquet of tulips", "flowers", "ordered"),
        Item("potted fern", "flowers", "bought"),
        _some("roses", "flowers", "bought"),
    )),
    Place("noodle bar", ("cook", "waiter"), (
        Item("bowl of ramen", "food", "ordered"),
        _some("dumplings", "food", "ordered"),
        Item("green tea", "drink", "ordered"),
    )),
    Place("tea room", ("server", "owner"), (
        Item("pot of tea", "drink", "ordered"),
        Item("scone", "food", "ordered"),
        Item("slice of carrot cake", "food", "ordered"),
    )),
    Place("diner", ("cook", "waiter"), (
        _some("pancakes", "food", "ordered"),
        Item("cheeseburger", "food", "ordered"),
        Item("portion of chips", "food", "ordered"),
        Item("vanilla milkshake", "drink", "ordered"),
    )),
    Place("bus station", ("ticket clerk", "driver"), (
        Item("day pass", "booking", "bought"),
        Item("coach ticket", "booking", "bought"),
        Item("cup of tea", "drink", "bought"),
    )),
    Place("dental clinic", ("dentist", "receptionist"), (
        Item("check-up", "service", "booked"),
        Item("teeth cleaning", "service", "booked"),
        Item("filling", "service", "needed"),
    )),
    Place("music shop", ("shop assistant",), (
        _some("guitar strings", "object", "bought"),
        Item("ukulele", "object", "bought"),
        Item("piano lesson", "experience", "booked"),
    )),
    Place("sports centre", ("coach", "receptionist"), (
        Item("badminton court", "room", "booked"),
        Item("yoga class", "experience", "signed up for"),
        Item("tennis racket", "object", "rented"),
    )),
    Place("bowling alley", ("attendant",), (
        Item("lane", "room", "booked"),
        _some("bowling shoes", "object", "rented"),
        Item("hot dog", "food", "ordered"),
    )),
    Place("garden centre", ("gardener", "shop assistant"), (
        _some("tomato plants", "flowers", "bought"),
        Item("bag of compost", "product", "bought"),
        Item("watering can", "object", "bought"),
    )),
)

# kind -> (sincerely good states, plainly bad states); all work after "was"/"were".
STATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "food": (
        ("delicious", "fresh and warm", "full of flavour", "perfectly cooked", "generous"),
        ("cold", "stale", "burnt", "soggy", "bland", "undercooked"),
    ),
    "drink": (
        ("smooth and rich", "perfectly made", "refreshing", "delicious"),
        ("lukewarm", "watery", "bitter", "weak", "mostly ice"),
    ),
    "produce": (
        ("fresh", "ripe", "sweet", "juicy"),
        ("bruised", "mouldy", "overripe", "half rotten"),
    ),
    "product": (
        ("well priced", "easy to find", "in stock", "good value"),
        ("expired", "overpriced", "out of stock", "damaged"),
    ),
    "object": (
        ("sturdy", "well made", "spotless", "brand new"),
        ("broken", "scratched", "damaged", "faulty", "flimsy"),
    ),
    "book": (
        ("in perfect condition", "a real page-turner", "beautifully printed"),
        ("torn", "badly stained", "water-damaged", "scribbled in"),
    ),
    "delivery": (
        ("handled with care", "sent the same day", "cheap to send"),
        ("lost", "delayed", "damaged", "sent to the wrong town"),
    ),
    "service": (
        ("quick", "careful", "thorough", "done perfectly", "professional"),
        ("rushed", "sloppy", "late", "unfinished", "done wrong"),
    ),
    "booking": (
        ("cheap", "easy to sort out", "ready in minutes", "good value"),
        ("wrong", "overpriced", "invalid", "full of mistakes"),
    ),
    "room": (
        ("clean", "quiet", "spacious", "comfortable", "bright"),
        ("dirty", "noisy", "cramped", "freezing", "damp"),
    ),
    "experience": (
        ("fascinating", "fun", "well organised", "moving", "brilliant"),
        ("boring", "cut short", "badly organised", "confusing", "late to start"),
    ),
    "flowers": (
        ("fresh", "beautifully arranged", "bright and healthy"),
        ("wilted", "limp", "half dead", "brown at the edges"),
    ),
}
CHEAP_KINDS = frozenset({"food", "drink", "produce", "product", "flowers"})
PRICES = {
    True: ("two pounds", "three pounds", "four pounds fifty", "five pounds", "six pounds"),
    False: ("twelve pounds", "fifteen pounds", "twenty pounds", "thirty pounds", "sixty pounds"),
}

FEMALE = (
    "Maria", "Aisha", "Priya", "Sofia", "Emma", "Chloe", "Hannah", "Yuki", "Fatima", "Grace",
    "Olivia", "Leila", "Nina", "Rosa", "Amara", "Ingrid", "Mei", "Zara", "Lucy", "Elena",
    "Ana", "Kate", "Julia", "Noor", "Sara", "Ruth", "Isla", "Freya", "Ines", "Mila",
)
MALE = (
    "Tom", "James", "Omar", "Luca", "Daniel", "Ravi", "Kenji", "Samuel", "Ahmed", "David",
    "Marco", "Felix", "Leo", "Hugo", "Ben", "Oscar", "Ivan", "Tariq", "Jonas", "Mateo",
    "Kwame", "Arjun", "Noah", "Ethan", "Pablo", "Sean", "Victor", "Hassan", "Erik", "Max",
)
PEOPLE: tuple[tuple[str, str], ...] = (
    *((name, "f") for name in FEMALE),
    *((name, "m") for name in MALE),
)
PRONOUNS = {"f": ("she", "her", "her"), "m": ("he", "him", "his")}  # subject, object, possessive

STREETS = (
    "Elm Street", "Oak Avenue", "Mill Lane", "High Street", "Church Road", "Station Road",
    "Park Lane", "Queen Street", "Maple Drive", "Bridge Street", "Market Street", "River Road",
    "Hill Street", "Green Lane", "Castle Street", "Victoria Road", "Orchard Way", "Baker Street",
    "Harbour Road", "North Street",
)
LANDMARKS = (
    "the old church", "the town hall", "the river", "the market square", "the bus stop",
    "the clock tower", "the primary school", "the fire station", "the canal", "the war memorial",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CLOCKS = {  # part of day -> times in order, so arrival < "now" < departure
    "morning": (
        "eight o'clock", "half past eight", "nine o'clock", "a quarter past nine",
        "ten o'clock", "half past ten", "eleven o'clock", "noon",
    ),
    "afternoon": (
        "one o'clock", "half past one", "two o'clock", "three o'clock", "half past three",
        "four o'clock", "five o'clock",
    ),
    "evening": (
        "six o'clock", "half past six", "seven o'clock", "a quarter to eight",
        "eight o'clock", "half past eight", "nine o'clock",
    ),
}
WEATHER = (
    "sunny", "cloudy", "windy", "raining lightly", "bright and breezy", "warm and still", "foggy",
)

# Fields drawn afresh on every use (the rest are fixed per story in Slots).
POOLS: dict[str, tuple[str, ...]] = {
    "superb": (
        "wonderful", "excellent", "lovely", "fantastic", "superb", "brilliant", "great",
        "delightful",
    ),
    "bad_word": (
        "terrible", "awful", "dreadful", "miserable", "disappointing", "poor", "shocking",
    ),
    "wow": (
        "Oh great", "Oh wonderful", "Just perfect", "Oh brilliant", "Fantastic", "How lovely",
        "Oh, marvellous", "Perfect",
    ),
    "duration": (
        "forty minutes", "almost an hour", "over an hour", "half an hour",
        "twenty-five minutes", "two hours",
    ),
    "short_wait": ("five minutes", "ten minutes", "fifteen minutes", "twenty minutes"),
    "count": ("two", "three", "four", "five", "six"),
    "number": tuple(str(n) for n in range(12, 100, 7)),
    "bus": ("4", "7", "12", "21", "36", "43", "88"),
}
# fmt: on


# --------------------------------------------------------------------------- sentence frames
#
# {who} is the main character: their name on first mention, a pronoun afterwards; {him} and
# {his} follow the same rule. {a_X} puts a/an in front of field X. See Slots for the rest.

OPENINGS = (
    "On {day}, {who} went to the {place} on {street}.",
    "On {day} {part}, {who} stopped by the {place} near {landmark}.",
    "{who} visited the {place} on {street} last {day}.",
    "After work on {day}, {who} took the bus to the {place}.",
    "It was {day} {part}, and {who} was at the {place} on {street}.",
    "{who} arrived at the {place} just after {clock}.",
    "On {day}, {who} dropped by the {place} for {a_item}.",
    "{who} spent {day} {part} at the {place} on {street}.",
    "The {place} on {street} was {his} first stop on {day}.",
    "{who} had a free {part} on {day}, so {who} went to the {place}.",
    "On {day}, {who} met {friend} at the {place} near {landmark}.",
    "Early on {day}, {who} walked over to the {place} on {street}.",
    "{who} went to the {place} with {friend} on {day} {part}.",
)
CLOSINGS = (
    "Then {who} walked home along {street2}.",
    "After that, {who} caught the number {bus} bus home.",
    "{who} left the {place} at {later_clock}.",
    "Later that day, {who} met {friend} for dinner.",
    "{who} got home just before {later_clock}.",
    "Afterwards, {who} went back to work.",
    "On the way out, {who} picked up a leaflet.",
    "{who} took the long way home past the {other_place}.",
    "The next stop was the {other_place} on {street2}.",
    "By {later_clock}, {who} was back at home.",
)


@dataclass(frozen=True)
class Register:
    """Frames for one label: events carry the evidence, remarks only comment on it.

    Why split them: a story built from remarks alone ("Truly the best cafe in town.") would be
    ambiguous between praise and sarcasm, so every story gets at least one event.
    """

    events: tuple[str, ...]
    remarks: tuple[str, ...] = ()


NEUTRAL = Register(
    events=(
        "{who} {verb} {a_item} and sat down to wait.",
        "The {staff} handed {him} a receipt.",
        "{who} paid by card and put the receipt away.",
        "There were {count} people ahead of {him} in the queue.",
        "The {staff} asked for {his} name and wrote it down.",
        "{who} checked {his} phone while waiting.",
        "A radio was playing in the back room.",
        "The {item} cost {price}.",
        "{who} read a notice about the opening hours.",
        "The {staff} said it would take about {short_wait}.",
        "{who} looked at the clock, and it was {now_clock}.",
        "The weather outside was {weather} that day.",
        "{friend} sent {him} a message while {who} was waiting.",
        "{who} asked the {staff} about the opening hours.",
        "The {staff} gave {him} a ticket with the number {number}.",
        "{who} {verb} {a_item} and paid {price}.",
        "A few other people were waiting nearby.",
        "The {staff} typed something into a computer.",
        "{who} filled in a short form at the counter.",
        "{who} took a seat and waited for {his} turn.",
        "A delivery van was parked outside the {place}.",
    )
)

REGISTERS: dict[str, Register] = {
    "praise": Register(
        events=(
            "The {item} {was} {good}, just as {who} had hoped.",
            "The {staff} was friendly and explained everything clearly.",
            "The {staff} remembered {his} name and smiled warmly.",
            "The wait was short and the whole place was spotless.",
            "{who} was genuinely impressed by the {item}.",
            "Honestly, the {item} {was} {good}, and {who} said so.",
            "The {staff} went out of their way to help {him}.",
            "Service was quick, friendly and careful.",
            "It cost less than {who} expected, which was a nice surprise.",
            "The {place} was calm, clean and bright.",
            "{who} {verb} {a_item}, and {it} {was} {good}.",
            "The {staff} even gave {him} a small discount.",
            "Thanks to the {staff}, the {item} {was} {good}.",
            "It took only {short_wait}, and the {item} {was} {good}.",
        ),
        remarks=(
            "{who} decided it was the best {place} in town.",
            "Everything was {superb}, and the price was fair.",
            "{who} left a glowing review online that evening.",
            "It was {a_superb} visit from start to finish.",
            "{who} thanked the {staff} twice before leaving.",
            "{who} plans to come back next week with {friend}.",
            "{who} felt happy and well looked after.",
            "{who} told {friend} all about the {superb} {place}.",
            '"This is {superb}," {who} said, and {who} meant it.',
            "{who} could not have asked for a better {part}.",
            "It really is the best {place} in town.",
        ),
    ),
    "sarcasm": Register(
        events=(
            "{wow}, the {item} {was} {bad} again.",
            "Just perfect, {who} waited {duration} for the {staff}.",
            "What a delight to queue outside for {duration}.",
            '"Love how nobody here answers questions," {who} muttered.',
            "Brilliant, they charged {him} twice for the {item}.",
            "Fantastic service as always: nobody came over for {duration}.",
            "Lovely, the {staff} got everything wrong twice.",
            "Just what {who} needed, another {duration} standing in a queue.",
            "Five stars for the {item}, which {was} {bad}.",
            "Nothing says luxury like the {item} being {bad}.",
            "Amazing how the price went up again while the {item} got worse.",
            "What a wonderful idea to leave only one {staff} on duty.",
            "Lucky {him}, the {staff} sighed loudly and turned away.",
            '"Perfect, just perfect," {who} said, since the {item} {was} {bad}.',
            "Such a treat to pay extra when the {item} {was} {bad}.",
            "{wow}, the card machine was out of order.",
            "{who} just loved sitting for {duration} next to a broken heater.",
            "What a charming touch: a sticky counter and nobody around.",
            "How wonderful, the {staff} was on a break again.",
            "Best {part} ever, thanks to the {item} being {bad}.",
            "{who} was simply thrilled that the {item} {was} {bad}.",
            "{wow}, it only took {duration} to get served.",
        ),
        remarks=(
            "Truly the best {place} in town.",
            "Truly {superb} work from the {staff} today.",
            "What {a_superb} way to spend a {day}.",
            "Ten out of ten, would happily queue again.",
            "Highly recommended, if you enjoy wasting your {part}.",
            "Really, the service here is second to none.",
        ),
    ),
    "complaint": Register(
        events=(
            "The {item} {was} {bad}, and the {staff} did not care.",
            "{who} waited {duration}, which was completely unacceptable.",
            "The service was slow and the {staff} was rude.",
            "{who} was very disappointed that the {item} {was} {bad}.",
            "{who} asked for a refund, but the {staff} refused.",
            "The {place} was dirty, noisy and badly run.",
            "Frankly, the {item} {was} {bad}, which is not good enough.",
            "{who} felt annoyed and ignored the whole time.",
            "The {staff} got everything wrong and then blamed {him}.",
            "{who} complained to the manager, but nothing changed.",
            "{who} {verb} {a_item}, but {it} {was} {bad}.",
            "The {staff} was rude and kept {him} waiting for {duration}.",
            "Sadly, the {item} {was} {bad} and far too expensive.",
            "Nobody apologised when the {item} turned out {bad}.",
        ),
        remarks=(
            "It was {a_bad_word} visit from start to finish.",
            "The prices were far too high for such poor quality.",
            "{who} will not be going back there again.",
            "{who} left an angry one-star review that night.",
            "It was the worst {place} {who} had been to in years.",
            "What a waste of money and time.",
            "{who} was fed up with the {bad_word} service.",
            "The whole visit left {him} tired and irritated.",
            "Not a single person said sorry, which made it worse.",
        ),
    ),
    "neutral": NEUTRAL,
}


# --------------------------------------------------------------------------- grammar helpers


def with_article(phrase: str) -> str:
    """Prefix a/an by sound, covering the few exceptions our vocabulary needs."""
    word = phrase.lower()
    vowel_sound = word[0] in "aeiou"
    if word.startswith(("uni", "use", "uku", "eu", "one")):
        vowel_sound = False
    elif word.startswith(("hour", "honest")):
        vowel_sound = True
    return f"{'an' if vowel_sound else 'a'} {phrase}"


def indefinite(item: Item) -> str:
    """First-mention noun phrase for an item ("an espresso", "some stamps", "room service")."""
    if item.det == "a":
        return with_article(item.noun)
    return f"{item.det} {item.noun}".strip()


def finish(sentence: str) -> str:
    """Capitalise the first letter (frames may start with a field) and check end punctuation."""
    first = next(i for i, ch in enumerate(sentence) if ch.isalpha())
    sentence = sentence[:first] + sentence[first].upper() + sentence[first + 1 :]
    if not sentence.endswith(SENTENCE_ENDS):
        raise ValueError(f"sentence lacks final punctuation: {sentence!r}")
    return sentence


# --------------------------------------------------------------------------- stories


class Slots:
    """Resolves frame fields for one story so that all of its sentences agree.

    Why: who, where, what and when are fixed once per story; the character's name is used on
    first mention and a pronoun afterwards; free pools (praise words, waits) vary per use.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.name, gender = rng.choice(PEOPLE)
        self.pronouns = dict(zip(("who", "him", "his"), PRONOUNS[gender], strict=True))
        self.mentioned = False
        self.item_seen = False
        place, other = rng.sample(PLACES, 2)
        self.item = item = rng.choice(place.items)
        part = rng.choice(tuple(CLOCKS))
        clock, now_clock, later_clock = (
            CLOCKS[part][i] for i in sorted(rng.sample(range(len(CLOCKS[part])), 3))
        )
        street, street2 = rng.sample(STREETS, 2)
        self.fixed = {
            "friend": rng.choice([name for name, _ in PEOPLE if name != self.name]),
            "place": place.name,
            "other_place": other.name,
            "staff": rng.choice(place.staff),
            "verb": item.verb,
            "was": "were" if item.plural else "was",
            "it": "they" if item.plural else "it",
            "street": street,
            "street2": street2,
            "landmark": rng.choice(LANDMARKS),
            "day": rng.choice(DAYS),
            "part": part,
            "clock": clock,
            "now_clock": now_clock,
            "later_clock": later_clock,
            "weather": rng.choice(WEATHER),
            "good": rng.choice(STATES[item.kind][0]),
            "bad": rng.choice(STATES[item.kind][1]),
        }
        self.pools = {**POOLS, "price": PRICES[item.kind in CHEAP_KINDS]}

    def __getitem__(self, key: str) -> str:
        if key in self.pronouns:
            return self._person(key)
        if key in ("item", "a_item"):
            return self._item(key)
        if key in self.fixed:
            return self.fixed[key]
        if key in self.pools:
            return self.rng.choice(self.pools[key])
        if key.startswith("a_"):
            return with_article(self[key[2:]])
        raise KeyError(key)

    def _person(self, role: str) -> str:
        """Name on first mention (possessive for {his}), pronoun once the reader knows them."""
        if self.mentioned:
            return self.pronouns[role]
        self.mentioned = True
        return f"{self.name}'s" if role == "his" else self.name

    def _item(self, key: str) -> str:
        """Bare noun for "the {item}"; for {a_item}, "a latte" first and "the latte" after."""
        first = not self.item_seen
        self.item_seen = True
        if key == "item":
            return self.item.noun
        return indefinite(self.item) if first else f"the {self.item.noun}"

    def render(self, frame: str) -> str:
        return finish(frame.format_map(self))


def mentions_item(frame: str) -> bool:
    """True for frames about the item ("the latte was cold", "ordered a latte")."""
    return "item}" in frame or "{good}" in frame or "{bad}" in frame


def sample_events(rng: random.Random, events: tuple[str, ...], k: int) -> list[str]:
    """Sample k event frames with at most one about the item.

    Why: two such frames in one story read as a stilted repetition of the same fact.
    """
    while True:
        chosen = rng.sample(events, k)
        if sum(map(mentions_item, chosen)) <= 1:
            return chosen


def pick_body(rng: random.Random, label: str, size: int) -> list[tuple[str, str]]:
    """Choose body frames and their sentences' registers: at least one event for the label,
    remarks after the events.

    Non-neutral stories sometimes open with a neutral event, as real reviews set the scene.
    """
    register = REGISTERS[label]
    lead = []
    if label != "neutral" and size >= 2 and rng.random() < 0.35:
        lead = [(rng.choice(NEUTRAL.events), "neutral")]
        size -= 1
    n_events = rng.randint(1, size)
    n_remarks = min(size - n_events, len(register.remarks))
    n_events = size - n_remarks
    body = [*sample_events(rng, register.events, n_events),
            *rng.sample(register.remarks, n_remarks)]
    return [*lead, *((frame, label) for frame in body)]


def make_story(rng: random.Random, label: str) -> list[tuple[str, str]]:
    """Build one 2-5 sentence story, each sentence with its own register: optional neutral
    opening, body, optional neutral closing."""
    n_sentences = rng.randint(2, 5)
    has_opening = rng.random() < 0.8
    has_closing = n_sentences - has_opening >= 2 and rng.random() < 0.4
    frames = pick_body(rng, label, n_sentences - has_opening - has_closing)
    if has_closing:
        # A closing may come before a final remark ("She left at noon. Truly the best...").
        at_end = frames[-1][0] not in REGISTERS[label].remarks or rng.random() < 0.5
        frames.insert(len(frames) if at_end else len(frames) - 1,
                      (rng.choice(CLOSINGS), "neutral"))
    if has_opening:
        frames.insert(0, (rng.choice(OPENINGS), "neutral"))
    slots = Slots(rng)
    return [(slots.render(frame), register) for frame, register in frames]


Story = tuple[str, list[tuple[str, str]]]  # label, (sentence, its register) in order


def make_corpus(seed: int, n: int) -> list[Story]:
    """Return n unique stories, balanced over LABELS and shuffled."""
    rng = random.Random(seed)
    labels = [LABELS[i % len(LABELS)] for i in range(n)]
    rng.shuffle(labels)
    seen: set[str] = set()
    stories = []
    for label in labels:
        while True:  # regenerate on the (rare) exact duplicate
            sentences = make_story(rng, label)
            text = " ".join(sentence for sentence, _ in sentences)
            if text not in seen:
                break
        seen.add(text)
        stories.append((label, sentences))
    return stories


def write_jsonl(stories: list[Story], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        for label, sentences in stories:
            record = {"text": " ".join(sentence for sentence, _ in sentences), "label": label,
                      "sentence_labels": [register for _, register in sentences]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def report(stories: list[Story], out: Path) -> None:
    """Print the corpus statistics quoted in data/README.md."""
    counts = Counter(label for label, _ in stories)
    sentences = [s for _, story in stories for s, _ in story]
    registers = Counter(register for _, story in stories for _, register in story)
    words = [len(s.split()) for s in sentences]
    n = len(stories)
    print("label counts:", ", ".join(f"{label}={counts[label]}" for label in LABELS))
    print(f"stories: {n}")
    print(f"mean sentences per story: {len(sentences) / n:.2f}")
    print(f"mean words per story: {sum(words) / n:.1f}")
    mean_words = sum(words) / len(words)
    print(f"words per sentence: min {min(words)}, max {max(words)}, mean {mean_words:.1f}")
    print(f"distinct sentences: {len(set(sentences))} of {len(sentences)}")
    print(f"distinct stories: {len({' '.join(s for s, _ in story) for _, story in stories})}")
    print("sentence registers:", ", ".join(f"{r}={registers[r]}" for r in LABELS))
    print(f"file: {out} ({out.stat().st_size:,} bytes)")
    print(f"sha256: {hashlib.sha256(out.read_bytes()).hexdigest()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n", type=int, default=6000, help="number of stories (default 6000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSONL path")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be positive")
    stories = make_corpus(args.seed, args.n)
    write_jsonl(stories, args.out)
    report(stories, args.out)


if __name__ == "__main__":
    main()
