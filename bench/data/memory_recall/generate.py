#!/usr/bin/env python3
"""The recall set of bench section memory_recall: synthetic users, their past chat sessions
and the questions they later ask whose answer sits in exactly one of those sessions.

Run: python bench/data/memory_recall/generate.py [--out DIR]   (stdlib only, fixed seed)

Writes sessions.jsonl (one ended session a line, its messages in order) and probes.jsonl (one
question a line, with the session that answers it) next to this file. Deterministic: the same
seed always writes the same bytes; tests/unit/test_memory_recall_data.py holds the committed
files to this generator's output. Synthetic: every user, name and fact is made up here
(licence: the project's own; no third-party text).

Each user has 20 to 40 sessions. Most are an *episode* of a kind (a trip, an order, a doctor's
appointment, a pet, a car, a repair, a gift, a dinner, an interview, a race, a flat, a
subscription) holding one distinctive fact (a city, a date, an order number, a name...),
stated once, often in the first turns and often after the message's first sentence; the rest
of the session is that kind's small talk, so the last messages rarely repeat it. A user has
several episodes of the same kind (three trips for three reasons), and some sessions of a kind
with no fact at all: the distractors share the gold session's vocabulary. A probe asks for the
fact by its cue (why the trip, what was ordered), worded differently from the session: cues
come with aliases and the probe prefers one the session did not use.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20261202
USERS = 36
SESSIONS = (20, 40)  # per user, inclusive
PROBES_PER_USER = (7, 11)
KINDS_PER_USER = (5, 7)
FILLER_SHARE = 0.22  # sessions with no fact: same vocabulary, nothing to recall
DAY = 86400
T0 = 1767225600  # 2026-01-01T00:00:00Z
HERE = Path(__file__).resolve().parent

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
CITIES = [
    "Lisbon",
    "Porto",
    "Seville",
    "Valencia",
    "Bologna",
    "Verona",
    "Krakow",
    "Gdansk",
    "Ljubljana",
    "Zagreb",
    "Tallinn",
    "Riga",
    "Vilnius",
    "Bergen",
    "Aarhus",
    "Gothenburg",
    "Salzburg",
    "Innsbruck",
    "Lyon",
    "Bordeaux",
    "Marseille",
    "Nantes",
    "Antwerp",
    "Ghent",
    "Rotterdam",
    "Utrecht",
    "Edinburgh",
    "Galway",
    "Cork",
    "Dresden",
    "Leipzig",
    "Hamburg",
    "Zurich",
    "Basel",
    "Naples",
    "Palermo",
    "Athens",
    "Thessaloniki",
    "Split",
    "Montreal",
    "Quebec",
    "Vancouver",
    "Denver",
    "Austin",
    "Portland",
    "Kyoto",
    "Osaka",
    "Busan",
    "Hanoi",
    "Lima",
]
PET_NAMES = [
    "Luna",
    "Milo",
    "Oscar",
    "Bella",
    "Rufus",
    "Hazel",
    "Juniper",
    "Otis",
    "Mabel",
    "Winston",
    "Clementine",
    "Pippin",
    "Frodo",
    "Koda",
    "Sasha",
    "Loki",
    "Tilly",
    "Archie",
    "Nova",
    "Bramble",
    "Sprout",
    "Waffles",
    "Noodle",
    "Ziggy",
    "Mochi",
    "Gizmo",
    "Pumba",
    "Dexter",
    "Willow",
    "Cosmo",
    "Biscuit",
    "Rocco",
    "Suki",
    "Bruno",
    "Figaro",
    "Olive",
    "Bandit",
    "Kiwi",
    "Tango",
    "Zelda",
]
SURNAMES = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Castellanos",
    "Nakamura",
    "Brennan",
    "Haddad",
    "Kowalski",
    "Ferreira",
    "Adeyemi",
    "Novak",
    "Petrov",
    "Gallagher",
    "Szabo",
    "Delacroix",
    "Mwangi",
    "Takahashi",
    "Rossetti",
    "Vasquez",
    "Oyelaran",
    "Halvorsen",
    "Dimitriou",
    "Abernathy",
    "Quintero",
    "Eriksen",
    "Varga",
    "Mbeki",
    "Kapoor",
    "Yilmaz",
    "Sorensen",
    "Whitlock",
    "Achebe",
    "Lacroix",
    "Bianchi",
    "Fitzgerald",
    "Zielinski",
]
FIRST_NAMES = [
    "Marta",
    "Tomasz",
    "Ingrid",
    "Rafael",
    "Yuki",
    "Declan",
    "Amara",
    "Lukas",
    "Priya",
    "Henrik",
    "Soledad",
    "Emeka",
    "Greta",
    "Matteo",
    "Noor",
    "Callum",
    "Ilse",
    "Dario",
    "Femi",
    "Astrid",
    "Bogdan",
    "Leilani",
    "Oskar",
    "Rosalind",
    "Teodor",
    "Wanjiru",
]
COMPANIES = [
    "Brightwell Analytics",
    "Corvane Labs",
    "Hollis & Finch",
    "Meridian Freight",
    "Quillstone Media",
    "Tessaract Health",
    "Orchard Robotics",
    "Bluefen Energy",
    "Pinecrest Software",
    "Larkspur Finance",
    "Northgate Studios",
    "Velora Biotech",
    "Kestrel Logistics",
    "Ambergate Games",
    "Saltmarsh Insurance",
    "Greywater Systems",
    "Juniper Row Design",
    "Ostrava Motors",
    "Halcyon Retail",
    "Fernhill Foods",
]
CARS = [
    "Skoda Octavia",
    "Mazda CX-5",
    "Volvo XC40",
    "Toyota Corolla",
    "Kia Niro",
    "Hyundai Ioniq",
    "Subaru Outback",
    "Honda Civic",
    "Renault Clio",
    "Peugeot 3008",
    "Ford Kuga",
    "Volkswagen Golf",
    "Nissan Leaf",
    "Tesla Model 3",
    "Dacia Duster",
    "Fiat 500",
    "Seat Leon",
    "Audi A3",
    "BMW i3",
    "Citroen Berlingo",
]
DISHES = [
    "mushroom risotto",
    "lamb tagine",
    "paella",
    "beef bourguignon",
    "butternut squash lasagna",
    "pad thai",
    "coq au vin",
    "shakshuka",
    "chicken biryani",
    "salmon en croute",
    "moussaka",
    "jambalaya",
    "stuffed peppers",
    "pork carnitas",
    "ratatouille",
    "gnocchi with pesto",
    "duck confit",
    "vegetable curry",
]
GIFTS = [
    "a vintage record player",
    "a leather-bound journal",
    "a pottery class voucher",
    "a telescope",
    "a cashmere scarf",
    "a bonsai tree",
    "a fountain pen",
    "a hot air balloon ride",
    "a board game collection",
    "a watercolour set",
    "a sourdough starter kit",
    "a framed star map",
    "a kayak rental day",
    "a bread maker",
    "a noise machine",
    "a silk robe",
    "a chess set carved from olive wood",
    "a wine decanter",
]


def _alias(*words: str) -> tuple[str, ...]:
    return words


@dataclass
class Cue:
    """What tells this episode from others of its kind: said one way in the session, asked
    another way in the probe (``ask`` aliases are preferred to the one the session used)."""

    say: tuple[str, ...]
    ask: tuple[str, ...]


@dataclass
class Episode:
    kind: str
    opening: str  # the user's first message
    plant: str  # the sentence with the fact
    plant_reply: str
    answer: str
    question: str
    turns: list[tuple[str, str]] = field(default_factory=list)


class User:
    def __init__(self, rng: random.Random, uid: str) -> None:
        self.rng = rng
        self.uid = uid
        self.used: set[str] = set()  # answers and other distinctive values already in a session
        self.cues: dict[str, set[int]] = {}

    def take(self, pool: list[str]) -> str:
        free = [v for v in pool if v not in self.used]
        v = self.rng.choice(free)
        self.used.add(v)
        return v

    def date(self) -> str:
        while True:
            d = f"{self.rng.choice(MONTHS)} {self.rng.randint(2, 28)}"
            if d not in self.used:
                self.used.add(d)
                return d

    def number(self, fmt: str) -> str:
        while True:
            v = fmt.format(self.rng.randint(10000, 99999))
            if v not in self.used:
                self.used.add(v)
                return v

    def cue(self, kind: str, cues: list[Cue]) -> Cue | None:
        taken = self.cues.setdefault(kind, set())
        free = [i for i in range(len(cues)) if i not in taken]
        if not free:
            return None
        i = self.rng.choice(free)
        taken.add(i)
        return cues[i]


_STOP = {
    "the",
    "for",
    "my",
    "our",
    "and",
    "with",
    "that",
    "this",
    "from",
    "a",
    "an",
    "of",
    "to",
    "in",
    "i",
    "at",
    "on",
    "it",
    "me",
    "we",
    "you",
    "is",
    "was",
    "thing",
    "one",
    "those",
    "new",
}


def _words(text: str) -> set[str]:
    words = (w.rstrip("s") for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP)
    return {w for w in words if len(w) > 1}  # not the "s" of "dad's"


def said_and_asked(rng: random.Random, cue: Cue) -> tuple[str, str]:
    """The cue's wording in the session and in the probe. The probe prefers a wording the
    session did not use, but keeps one word of it (else no word of the session would answer
    the question: a probe only a thesaurus finds measures nothing about the ranking)."""
    said = rng.choice(cue.say)
    near = [a for a in (*cue.ask, *cue.say) if a != said and _words(a) & _words(said)]
    asked = rng.choice(near) if near and rng.random() < 0.85 else said
    return said, asked


def _again(rng: random.Random, cue: Cue, prefix: str = "") -> str:
    """A later mention of the cue: mostly "it", as people say once they have named a thing,
    sometimes named again in any of the session's wordings."""
    return prefix + rng.choice(cue.say) if rng.random() < 0.4 else "it"


# --- kinds -------------------------------------------------------------------------------

TRIP_CUES = [
    Cue(("my sister's wedding", "my sister getting married"), ("my sister's marriage", "the wedding of my sister")),
    Cue(("a work conference", "the industry conference"), ("that conference for work", "the business summit")),
    Cue(("a hiking holiday", "a week of hiking"), ("the trekking trip", "my walking holiday in the hills")),
    Cue(("my grandmother's 90th birthday", "grandma turning ninety"), ("my gran's ninetieth", "granny's big birthday")),
    Cue(("a college reunion", "my university reunion"), ("the alumni get-together", "the reunion with old classmates")),
    Cue(("our honeymoon", "the honeymoon"), ("our trip after getting married", "the honeymoon")),
    Cue(("a football match", "the cup final"), ("the soccer game", "that match I had tickets for")),
    Cue(("my friend's bachelor party", "a stag weekend"), ("the stag do", "my mate's bachelor weekend")),
    Cue(("a ski trip", "a week skiing"), ("the snowboarding and ski holiday", "my winter sports week")),
    Cue(("a food tour", "a cooking holiday"), ("the culinary trip", "my eating-my-way-around holiday")),
    Cue(("a jazz festival", "the music festival"), ("that festival with the concerts", "the jazz weekend")),
    Cue(("visiting my parents", "seeing my mum and dad"), ("the visit home to my folks", "going to see my parents")),
]
TRIP_TURNS = [
    (
        "Should I book a window or an aisle seat?",
        "It depends on you. A window is better for sleeping; an aisle is easier if you like to stretch your legs.",
    ),
    (
        "How early should I get to the airport?",
        "For a short-haul flight about two hours is comfortable. Add time if you check a bag.",
    ),
    ("What should I pack for {cue}?", "Pack layers and one smarter outfit. A small day bag helps too."),
    ("Is travel insurance worth it?", "Usually, yes. It covers cancellations, lost luggage and medical costs."),
    (
        "Can you suggest a hotel near the centre?",
        "Look for somewhere within walking distance of the old town. Read recent reviews for noise.",
    ),
    ("Do I need to exchange money before I go?", "Cards work almost everywhere. Take a little cash for small cafes."),
    ("How do I get from the airport to the city?", "There is usually a train or an airport bus; taxis cost more."),
    ("What is the weather like that time of year?", "Mild days and cool evenings, so bring a light jacket."),
    ("Any tips for jet lag?", "Get daylight on arrival and try to sleep at local time."),
    ("Should I rent a car there?", "In the city, no: public transport is easier. For day trips it can help."),
]
TRIP_OPEN = [
    "Can you help me plan a trip?",
    "I need some travel advice.",
    "I'm sorting out travel plans.",
    "Hi, I'm booking flights and could use a hand.",
    "Hello! I have a trip coming up.",
]
TRIP_GENERIC = [
    "What are good cities for a weekend break?",
    "How do I find cheap flights?",
    "What should always be in a carry-on bag?",
    "Is it better to book flights early or late?",
]


def trip(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("trip", TRIP_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    city, date = u.take(CITIES), u.date()
    if r.random() < 0.5:
        answer = city
        q = r.choice(
            [
                f"Which city was I going to for {asked}?",
                f"Where was I travelling for {asked}?",
                f"Remind me, what was the destination of {asked}?",
            ]
        )
    else:
        answer = date
        q = r.choice(
            [
                f"What day did I say I fly out for {asked}?",
                f"When was I leaving for {asked}?",
                f"On which date was the departure for {asked}?",
            ]
        )
    plant = r.choice(
        [
            f"I'm flying to {city} on {date} for {said}.",
            f"For {said} I'll be in {city}, flying out {date}.",
            f"The flight to {city} leaves on {date}; it's for {said}.",
        ]
    )
    reply = r.choice(
        [
            "Sounds like a lovely trip. I can help with the details.",
            f"Great, {city} is a wonderful place to visit. Let's get you ready.",
            "Noted. Let's make sure the logistics are sorted.",
        ]
    )
    return Episode(
        "trip", r.choice(TRIP_OPEN), plant, reply, answer, q, [(a.format(cue=_again(r, cue)), b) for a, b in TRIP_TURNS]
    )


ORDER_CUES = [
    Cue(("a standing desk", "a sit-stand desk"), ("the height-adjustable desk", "the desk you can raise")),
    Cue(("noise-cancelling headphones", "wireless headphones"), ("the ANC headset", "the headphones that block noise")),
    Cue(("an espresso machine", "a coffee machine"), ("the espresso maker", "the machine for making coffee")),
    Cue(("running shoes", "trainers for running"), ("the jogging sneakers", "those runners")),
    Cue(("a winter coat", "a warm parka"), ("the heavy jacket for the cold", "the parka")),
    Cue(("an office chair", "an ergonomic chair"), ("the desk chair", "the chair for my back")),
    Cue(("a blender", "a smoothie blender"), ("the juicer thing for smoothies", "the blender")),
    Cue(("a robot vacuum", "a robot hoover"), ("the automatic vacuum cleaner", "the little robot that cleans floors")),
    Cue(("a baby stroller", "a pushchair"), ("the pram", "the buggy for the baby")),
    Cue(("a camping tent", "a four-person tent"), ("the tent for camping", "the family tent")),
    Cue(("a smartwatch", "a fitness watch"), ("the watch that tracks steps", "the smart watch")),
    Cue(("a set of kitchen knives", "a chef's knife set"), ("the knives for cooking", "the knife block")),
    Cue(("a mechanical keyboard", "a new keyboard"), ("the clicky keyboard", "the keyboard for my computer")),
]
ORDER_ISSUE = [
    "it arrived with a cracked part",
    "it's the wrong size",
    "it still hasn't shown up",
    "it came missing a piece",
    "the box was crushed and it rattles",
]
ORDER_TURNS = [
    ("How long do refunds usually take?", "Typically five to ten working days after the return is received."),
    ("Should I keep the original packaging?", "Yes, keep it until the return is complete; many shops require it."),
    ("Can I ask for a replacement instead of a refund?", "Usually, yes. Ask support which they prefer to process."),
    ("What if they don't reply to my email?", "Try their chat or phone line, and keep a record of every contact."),
    ("Do I have to pay for return shipping?", "For a faulty or wrong item the shop normally covers it."),
    ("How do I write a complaint that gets results?", "Be brief: what you ordered, what went wrong, what you want."),
    ("Is it worth paying by credit card for protection?", "Yes, card payments often allow a chargeback if needed."),
    ("Should I leave a review about {cue}?", "A fair review helps others. Mention how support handled it."),
    ("Can you draft a short message to customer service?", "Sure: 'Hello, my order has a problem; please advise.'"),
]
ORDER_OPEN = [
    "I have a problem with an online order.",
    "Can you help me sort out a delivery?",
    "I need to contact a shop about something I bought.",
    "Hi, an order of mine went wrong.",
]
ORDER_GENERIC = [
    "What are my rights when returning things bought online?",
    "How do I track a parcel?",
    "Which shops have the best return policies?",
    "How do I avoid fake reviews when shopping?",
]


def order(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("order", ORDER_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    num = u.number("#{}")
    issue = r.choice(ORDER_ISSUE)
    answer = num
    q = r.choice(
        [
            f"What was the order number for {asked} I bought?",
            f"Can you find the order reference of {asked}?",
            f"I need the number of my order for {asked} again.",
        ]
    )
    plant = r.choice(
        [
            f"I ordered {said} and {issue}; the order number is {num}.",
            f"It's order {num}, {said}, and {issue}.",
            f"The order for {said} is {num} and {issue}.",
        ]
    )
    reply = r.choice(
        [
            "Sorry to hear that. Let's get it resolved.",
            "That's frustrating. Here is what you can do.",
            "Thanks for the details. Most shops handle this quickly.",
        ]
    )
    return Episode(
        "order",
        r.choice(ORDER_OPEN),
        plant,
        reply,
        answer,
        q,
        [(a.format(cue=_again(r, cue)), b) for a, b in ORDER_TURNS],
    )


MEDICAL_CUES = [
    Cue(("a dermatologist", "a skin doctor"), ("the skin specialist", "the dermatology doctor")),
    Cue(("a cardiologist", "a heart specialist"), ("the doctor for my heart", "the cardiology appointment")),
    Cue(("a physiotherapist", "a physio"), ("the physical therapist", "the physiotherapy sessions")),
    Cue(("an eye doctor", "an ophthalmologist"), ("the eye specialist", "the doctor for my eyes")),
    Cue(("a dentist", "the dental clinic"), ("the dentist", "the tooth doctor")),
    Cue(("an allergist", "an allergy specialist"), ("the allergy doctor", "the allergist")),
    Cue(("an orthopaedic surgeon", "a bone specialist"), ("the orthopedic doctor", "the knee surgeon")),
    Cue(("an ENT specialist", "an ear, nose and throat doctor"), ("the ENT", "the ear doctor")),
]
MEDICAL_REASON = [
    "a rash that won't go away",
    "a pain in my knee",
    "dizzy spells",
    "blurry vision",
    "a cracked tooth",
    "sneezing all spring",
    "a ringing in my ears",
    "a sore lower back",
]
MEDICAL_TURNS = [
    ("What questions should I ask at the appointment?", "Ask about the cause, the options and what to watch for."),
    ("Should I bring anything with me?", "Bring a list of medicines and any earlier test results."),
    ("Will my insurance cover a specialist?", "Often with a referral. Check with your insurer first."),
    ("How do I stop worrying before {cue}?", "Write your questions down; knowing what to ask eases the nerves."),
    ("Can I drive home afterwards?", "Usually yes, unless they use drops or sedation; ask the clinic."),
    ("How long do these appointments take?", "Plan for about an hour with the waiting room."),
    ("Should I take the morning off work?", "If it's in the morning, it's easier to take a few hours off."),
    ("What if I need to reschedule?", "Call as early as possible; most clinics ask for a day's notice."),
]
MEDICAL_OPEN = [
    "I have a doctor's appointment coming up.",
    "Can you help me prepare for a medical visit?",
    "I finally booked a specialist.",
    "Hi, health question.",
]
MEDICAL_GENERIC = [
    "How do I find a good family doctor?",
    "When should I see a specialist?",
    "How often should I get a check-up?",
    "Is it normal to feel anxious at the doctor?",
]


def medical(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("medical", MEDICAL_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    doc, date = "Dr. " + u.take(SURNAMES), u.date()
    reason = r.choice(MEDICAL_REASON)
    if r.random() < 0.5:
        answer = doc
        q = r.choice(
            [
                f"What was the name of {asked} I was seeing?",
                f"Who was I booked with at {asked}?",
                f"Remind me of the doctor's name for {asked}.",
            ]
        )
    else:
        answer = date
        q = r.choice(
            [
                f"When is my visit to {asked}?",
                f"What date did I say the appointment with {asked} was?",
                f"Which day was I going to {asked}?",
            ]
        )
    plant = r.choice(
        [
            f"I'm seeing {said}, {doc}, on {date} about {reason}.",
            f"On {date} I have {said} appointment with {doc} for {reason}.",
            f"{doc} is {said} and I'm booked in on {date} because of {reason}.",
        ]
    )
    reply = r.choice(
        [
            "Good that you booked it. Let's get you prepared.",
            "That's a sensible step.",
            "I hope it goes well. Here are some things that might help.",
        ]
    )
    return Episode(
        "medical",
        r.choice(MEDICAL_OPEN),
        plant,
        reply,
        answer,
        q,
        [(a.format(cue=_again(r, cue)), b) for a, b in MEDICAL_TURNS],
    )


PET_CUES = [
    Cue(("a rescue kitten", "a little kitten from the shelter"), ("the cat we adopted", "the shelter kitty")),
    Cue(("a golden retriever puppy", "a retriever pup"), ("the goldie puppy", "the young retriever dog")),
    Cue(("a rabbit", "a lop-eared bunny"), ("the bunny", "our pet rabbit")),
    Cue(("a parrot", "an African grey"), ("the talking bird", "our grey parrot")),
    Cue(("a greyhound we rescued", "a retired racing greyhound"), ("the ex-racing dog", "our rescue greyhound")),
    Cue(("a hamster for my daughter", "my kid's hamster"), ("the hamster", "the little rodent my daughter got")),
    Cue(("a tortoise", "a baby tortoise"), ("the tortoise", "our pet turtle")),
    Cue(("a Maine Coon cat", "a big fluffy Maine Coon"), ("the huge cat", "the Maine Coon")),
    Cue(("a border collie", "a collie puppy"), ("the sheepdog", "the border collie pup")),
]
PET_TURNS = [
    ("What food should I buy?", "A good quality food for its age; change brands slowly over a week."),
    ("How often does it need the vet?", "A check-up once a year, plus vaccinations on schedule."),
    ("How do I stop it chewing the furniture?", "Give it things it may chew and praise it when it uses them."),
    ("Is it okay to leave a pet alone during the day?", "For a few hours, yes, with water and something to do."),
    ("What toys are safe for {cue}?", "Sturdy toys without small parts; supervise new ones at first."),
    ("Should I get pet insurance?", "It helps with large vet bills; compare what each plan excludes."),
    ("How do I introduce it to the neighbours' pets?", "Slowly, on neutral ground, with short calm meetings."),
    ("How much exercise is enough?", "It depends on the animal; a vet can give you a daily guide."),
]
PET_OPEN = [
    "We have a new pet at home!",
    "I could use some advice about a pet.",
    "Big news in our house.",
    "Hi, I'm a first-time pet owner.",
]
PET_GENERIC = [
    "Which pets are good for small flats?",
    "How do I choose a good vet?",
    "Are cats or dogs easier for busy people?",
    "What does a pet cost per month?",
]


def pet(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("pet", PET_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    name = u.take(PET_NAMES)
    answer = name
    q = r.choice(
        [f"What did we name {asked}?", f"What's the name I gave {asked}?", f"Remind me what {asked} is called."]
    )
    plant = r.choice(
        [
            f"We got {said} and named it {name}.",
            f"{name} is {said} we brought home last weekend.",
            f"Meet {name}, {said} who just joined the family.",
        ]
    )
    reply = r.choice(
        [
            "Congratulations on the new arrival!",
            "How exciting. A new pet is a lot of fun.",
            "Lovely! Let's make sure it settles in well.",
        ]
    )
    return Episode(
        "pet", r.choice(PET_OPEN), plant, reply, answer, q, [(a.format(cue=_again(r, cue)), b) for a, b in PET_TURNS]
    )


CAR_CUES = [
    Cue(("test drove", "had a test drive in"), ("drove at the dealership", "tried out on a test drive")),
    Cue(("rented for the road trip", "hired for a road trip"), ("hired for the long drive", "rented for my drive")),
    Cue(("got an insurance quote for", "am insuring"), ("got car insurance for", "asked for an insurance price on")),
    Cue(("took in for its service", "booked a service for"), ("had serviced at the garage", "took to the mechanic")),
    Cue(("bought second-hand", "bought used from a private seller"), ("bought pre-owned", "got from a private sale")),
]
CAR_TURNS = [
    ("Is a hybrid worth the extra cost?", "If you drive a lot in town, the fuel savings add up quickly."),
    ("What should I check on a used car?", "The service history, the tyres, rust and how it starts cold."),
    ("How often should the tyres be changed?", "When the tread gets near the legal minimum, or every few years."),
    ("Do I need winter tyres?", "Where it snows or freezes often, they make a real difference."),
    ("How do I lower my insurance?", "A higher excess, a good driving record and parking off the street help."),
    ("What's a fair price for a service?", "It varies by model; ask the garage for a fixed quote first."),
    ("Any tips for a long drive?", "Stop every two hours, keep water in the car and check the tyre pressure."),
]
CAR_OPEN = [
    "Car question for you.",
    "I'm dealing with car stuff this week.",
    "Hi, can we talk about cars?",
    "I need advice about a car.",
]
CAR_GENERIC = [
    "Should I buy an electric car?",
    "How do I learn basic car maintenance?",
    "What is a good first car?",
    "Is leasing better than buying?",
]


def car(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("car", CAR_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    model = u.take(CARS)
    answer = model
    q = r.choice(
        [
            f"Which car model was it that I {asked}?",
            f"What was the make of the car - the one I {asked}?",
            f"Tell me the car I mentioned, the one I {asked}.",
        ]
    )
    plant = r.choice(
        [
            f"It's a {model}, the car I {said}.",
            f"The car I {said} is a {model}.",
            f"The one I {said} this week is a {model}.",
        ]
    )
    reply = r.choice(
        ["Nice, that's a popular model.", "Good choice to look into it carefully.", "Let's go through what matters."]
    )
    return Episode("car", r.choice(CAR_OPEN), plant, reply, answer, q, CAR_TURNS)


REPAIR_CUES = [
    Cue(("the washing machine", "my washer"), ("the laundry machine", "the thing that washes clothes")),
    Cue(("the dishwasher", "our dishwasher"), ("the machine for the dishes", "the dish washer")),
    Cue(("the fridge", "the refrigerator"), ("the fridge-freezer", "the refrigerator")),
    Cue(("the boiler", "the gas boiler"), ("the heating", "the hot water system")),
    Cue(("the oven", "my electric oven"), ("the cooker", "the stove")),
    Cue(("the garage door", "the electric garage door"), ("the door of the garage", "the roller door")),
]
REPAIR_TURNS = [
    ("Is it worth repairing or should I replace it?", "If the repair costs more than half a new one, replace it."),
    ("Can I do anything myself before they come?", "Check the fuse and the filter; switch it off at the wall."),
    ("How much do call-out fees usually cost?", "Often a flat fee plus parts; ask for the total before agreeing."),
    ("Should I be home the whole day?", "Ask for a time slot; many firms will text when the engineer is near."),
    ("Is {cue} still under warranty?", "Check the receipt date; many appliances have two years."),
    ("How do I clean it so this doesn't happen again?", "A monthly clean and a descaler every few months help."),
    ("What should I ask the technician?", "Ask what failed, whether it is likely to happen again, and the cost."),
]
REPAIR_OPEN = [
    "Something broke at home.",
    "I need a repair and I'm not sure what to do.",
    "Ugh, an appliance died on me.",
    "Hi, household problem.",
]
REPAIR_GENERIC = [
    "How do I find a trustworthy repair person?",
    "Which appliances last the longest?",
    "How do I save energy with old appliances?",
    "What tools should every home have?",
]


def repair(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("repair", REPAIR_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    ticket, tech, date = u.number("ticket {}"), u.take(FIRST_NAMES), u.date()
    if r.random() < 0.5:
        answer = ticket
        q = r.choice(
            [f"What was the repair ticket for {asked}?", f"Which reference number did they give me for {asked}?"]
        )
    else:
        answer = tech
        q = r.choice([f"Who was the engineer coming to fix {asked}?", f"What was the technician's name for {asked}?"])
    plant = r.choice(
        [
            f"{said[0].upper() + said[1:]} stopped working, so {tech} is coming on {date}, {ticket}.",
            f"They gave me {ticket} for {said}, and a technician called {tech} comes {date}.",
            f"The repair on {said} is {ticket}; {tech} will visit on {date}.",
        ]
    )
    reply = r.choice(
        [
            "That's annoying, but it sounds like it's in hand.",
            "Good that someone is coming.",
            "Let's make sure the visit goes smoothly.",
        ]
    )
    return Episode(
        "repair",
        r.choice(REPAIR_OPEN),
        plant,
        reply,
        answer,
        q,
        [(a.format(cue=_again(r, cue)), b) for a, b in REPAIR_TURNS],
    )


GIFT_CUES = [
    Cue(("my dad's 60th birthday", "my father turning sixty"), ("my father's sixtieth", "dad's big birthday")),
    Cue(
        ("my sister's birthday", "my sister's birthday next month"),
        ("the birthday present for my sister", "my sibling's birthday"),
    ),
    Cue(("our anniversary", "our tenth anniversary"), ("the anniversary present", "our wedding anniversary")),
    Cue(("my boss retiring", "my manager's retirement"), ("the retirement gift at work", "my boss's leaving do")),
    Cue(("my best friend's housewarming", "a housewarming party"), ("the new-home present", "the housewarming")),
    Cue(("my mum for Mother's Day", "Mother's Day"), ("the present for my mother", "mothering Sunday")),
    Cue(("my nephew's graduation", "my nephew graduating"), ("the graduation gift", "my nephew finishing college")),
]
GIFT_TURNS = [
    ("How much should I spend?", "Whatever feels comfortable; thoughtfulness matters more than price."),
    ("Should I add a card?", "Yes, a few handwritten lines make any gift more personal."),
    ("How do I wrap something awkward?", "Use a box or a gift bag with tissue paper."),
    ("Is an experience better than a thing?", "Many people remember experiences longer."),
    ("What if they don't like it?", "Include a gift receipt so it can be exchanged."),
    ("Can you help me write the message for {cue}?", "Sure: keep it warm, short and specific to them."),
]
GIFT_OPEN = ["I need gift ideas.", "Help me pick a present?", "I'm terrible at presents.", "Hi, shopping for a gift."]
GIFT_GENERIC = [
    "What are good last-minute gifts?",
    "How do I pick a gift for someone who has everything?",
    "Are gift cards rude?",
    "What are nice gifts under twenty euros?",
]


def gift(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("gift", GIFT_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    present = u.take(GIFTS)
    answer = present
    q = r.choice(
        [
            f"What did I decide to give for {asked}?",
            f"Which present did I settle on for {asked}?",
            f"Remind me of the gift I chose for {asked}.",
        ]
    )
    plant = r.choice(
        [
            f"For {said} I've decided on {present}.",
            f"I'm going with {present} for {said}.",
            f"I settled on {present}; it's for {said}.",
        ]
    )
    reply = r.choice(
        [
            "That's a thoughtful choice.",
            "Lovely idea, they'll appreciate it.",
            "Great pick. A few finishing touches could make it special.",
        ]
    )
    return Episode(
        "gift", r.choice(GIFT_OPEN), plant, reply, answer, q, [(a.format(cue=_again(r, cue)), b) for a, b in GIFT_TURNS]
    )


DINNER_CUES = [
    Cue(("my in-laws coming over", "dinner with my in-laws"), ("my partner's parents visiting", "the in-laws dinner")),
    Cue(("a dinner party for eight", "eight guests for dinner"), ("the big dinner I'm hosting", "the dinner party")),
    Cue(("our anniversary dinner at home", "a romantic dinner"), ("the romantic meal", "the date night dinner")),
    Cue(("a potluck at work", "the office potluck"), ("the work shared lunch", "the potluck")),
    Cue(("my book club", "hosting book club"), ("the reading group evening", "book club night")),
    Cue(
        ("a birthday dinner for my partner", "my partner's birthday meal"),
        ("the birthday supper", "my partner's birthday dinner"),
    ),
]
DINNER_TURNS = [
    ("How far ahead can I prepare?", "Most sauces and desserts keep a day; cook the main on the day."),
    ("What wine goes with it?", "A medium red or a dry white both work; ask the shop for a pairing."),
    ("What starter should I do?", "Something light and cold, so you are free when guests arrive."),
    ("One guest is vegetarian, any ideas?", "Make a side that can be a main, like roasted vegetables with grains."),
    ("How do I time everything?", "Write a schedule backwards from when you want to serve."),
    ("What dessert is easy?", "A fruit crumble or a chocolate mousse made the day before."),
    ("How much food do I need for {cue}?", "Plan a little more than you think; leftovers are fine."),
]
DINNER_OPEN = [
    "I'm cooking for people soon.",
    "Help me plan a menu?",
    "I'm hosting and a bit nervous.",
    "Hi, cooking question.",
]
DINNER_GENERIC = [
    "What are easy weeknight dinners?",
    "How do I cook rice properly?",
    "What spices should every kitchen have?",
    "How do I meal prep for the week?",
]


def dinner(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("dinner", DINNER_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    dish = u.take(DISHES)
    answer = dish
    q = r.choice(
        [
            f"What main course was I making for {asked}?",
            f"Which dish did I plan to cook for {asked}?",
            f"What was on the menu for {asked}?",
        ]
    )
    plant = r.choice(
        [
            f"For {said} I'm making {dish} as the main.",
            f"The main for {said} will be {dish}.",
            f"I've decided to cook {dish} for {said}.",
        ]
    )
    reply = r.choice(
        [
            "That sounds delicious.",
            "Good choice, it's easy to make for a group.",
            "Nice. Let's plan the rest around it.",
        ]
    )
    return Episode(
        "dinner",
        r.choice(DINNER_OPEN),
        plant,
        reply,
        answer,
        q,
        [(a.format(cue=_again(r, cue)), b) for a, b in DINNER_TURNS],
    )


JOB_CUES = [
    Cue(("a product manager role", "a product manager job"), ("the PM position", "the product management job")),
    Cue(("a data analyst position", "a data analyst job"), ("the analytics role", "the data job")),
    Cue(
        ("a senior developer role", "a senior engineer job"),
        ("the software engineering position", "the senior dev job"),
    ),
    Cue(("a marketing lead position", "the head of marketing job"), ("the marketing role", "the marketing job")),
    Cue(("a part-time teaching job", "a teaching assistant post"), ("the teaching role", "the job at the school")),
    Cue(("a UX designer job", "a UX design role"), ("the design position", "the user experience job")),
]
JOB_TURNS = [
    ("How should I answer 'tell me about yourself'?", "Two minutes: your current role, a highlight, why this job."),
    ("What should I wear?", "One step smarter than what people wear there day to day."),
    ("How do I talk about salary?", "Give a researched range and let them make the first offer if you can."),
    ("What questions should I ask them?", "Ask about the team, how success is measured and the next steps."),
    ("How do I handle a question I can't answer?", "Say how you would find out; honesty lands better than bluffing."),
    ("Should I send a thank-you note after {cue}?", "Yes, a short email the same day is a nice touch."),
    ("How do I calm my nerves?", "Practise out loud, arrive early and breathe slowly before you go in."),
]
JOB_OPEN = [
    "I have a job interview!",
    "Can you help me get ready for an interview?",
    "Career question.",
    "Hi, I'm applying for jobs.",
]
JOB_GENERIC = [
    "How do I improve my CV?",
    "How long should a cover letter be?",
    "Is it okay to change jobs after a year?",
    "How do I ask for a raise?",
]


def job(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("job", JOB_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    company, date = u.take(COMPANIES), u.date()
    if r.random() < 0.6:
        answer = company
        q = r.choice([f"Which company was I interviewing with for {asked}?", f"Who was the employer for {asked}?"])
    else:
        answer = date
        q = r.choice([f"When was the interview for {asked}?", f"What date was I due to interview for {asked}?"])
    plant = r.choice(
        [
            f"It's at {company} for {said}, on {date}.",
            f"{company} invited me to interview for {said} on {date}.",
            f"On {date} I interview with {company} for {said}.",
        ]
    )
    reply = r.choice(
        [
            "Congratulations on getting the interview!",
            "Good luck! Let's prepare properly.",
            "That's a great opportunity.",
        ]
    )
    turns = [(a.format(cue=_again(r, cue, "the interview for ")), b) for a, b in JOB_TURNS]
    return Episode("job", r.choice(JOB_OPEN), plant, reply, answer, q, turns)


RACE_CUES = [
    Cue(("a half marathon", "my first half marathon"), ("the 21k race", "the half marathon")),
    Cue(("a triathlon", "a sprint triathlon"), ("the swim-bike-run race", "the triathlon")),
    Cue(("a charity bike ride", "a 100 km cycling event"), ("the sponsored cycle", "the long bike ride")),
    Cue(("a 10k fun run", "a ten kilometre run"), ("the 10 km race", "the fun run")),
    Cue(("an open-water swim", "a lake swim event"), ("the outdoor swimming race", "the swim in the lake")),
]
RACE_TURNS = [
    ("How many times a week should I train?", "Three to four sessions, with one easy and one long."),
    ("What should I eat the night before?", "A normal meal with extra carbohydrates and not too much fibre."),
    ("How do I avoid injury?", "Build up slowly, no more than ten percent more each week, and rest."),
    ("Should I buy new kit for {cue}?", "Only if you can try it in training first; nothing new on race day."),
    ("How do I pace myself?", "Start slower than feels natural; you can speed up at the end."),
    ("Is stretching important?", "Gentle mobility after sessions helps more than long stretches before."),
]
RACE_OPEN = [
    "I signed up for an event!",
    "Training question.",
    "I need a training plan.",
    "Hi, I'm trying to get fitter.",
]
RACE_GENERIC = [
    "How do I start running?",
    "What is a good beginner workout?",
    "How do I stay motivated to train?",
    "Is it better to train in the morning or evening?",
]


def race(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("race", RACE_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    city, date = u.take(CITIES), u.date()
    if r.random() < 0.5:
        answer = city
        q = r.choice([f"Where is {asked} I signed up for?", f"Which city is hosting {asked} I entered?"])
    else:
        answer = date
        q = r.choice([f"When is {asked} I registered for?", f"What date did I say {asked} takes place?"])
    plant = r.choice(
        [
            f"I entered {said} in {city} on {date}.",
            f"It's {said}, on {date} in {city}.",
            f"On {date} I'm doing {said} in {city}.",
        ]
    )
    reply = r.choice(["Well done for signing up!", "That's a great goal.", "Exciting! Let's build a plan."])
    return Episode(
        "race", r.choice(RACE_OPEN), plant, reply, answer, q, [(a.format(cue=_again(r, cue)), b) for a, b in RACE_TURNS]
    )


FLAT_CUES = [
    Cue(("the new flat", "the apartment we're renting"), ("the place we rent now", "our new apartment")),
    Cue(("the storage unit", "a self-storage locker"), ("the storage room I rent", "the locker for our stuff")),
    Cue(("the allotment garden", "an allotment plot"), ("the community garden plot", "the allotment")),
    Cue(("the holiday cottage", "a cottage by the sea"), ("the seaside cottage", "the holiday let")),
    Cue(("my parking space", "a parking spot I rent"), ("the garage space", "the parking place")),
]
FLAT_TURNS = [
    ("Can the landlord raise the rent whenever they want?", "Usually only as the contract allows; read it."),
    ("Should I take photos when I move in?", "Yes, of every room and any damage, with dates."),
    ("Who pays for repairs?", "Normally the owner for structural things, the tenant for small wear."),
    ("How much notice do I need to give?", "It is in the contract; one to three months is common."),
    ("Is renters insurance necessary?", "It protects your belongings and is usually cheap."),
    ("How do I get my deposit back from {cue}?", "Leave it clean, document it and return every key."),
]
FLAT_OPEN = [
    "Question about a rental.",
    "I'm renting something and have questions.",
    "Hi, tenant question.",
    "Can you help me understand a contract?",
]
FLAT_GENERIC = [
    "How do I find a flat in a busy city?",
    "What should I look for in a lease?",
    "Is it better to rent or buy?",
    "How do I deal with noisy neighbours?",
]


def flat(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("flat", FLAT_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    owner = u.take(FIRST_NAMES) + " " + u.take(SURNAMES)
    rent = u.number("{} euros")
    rent = f"{int(rent.split()[0]) % 1900 + 100} euros a month"
    if rent in u.used:
        return None
    u.used.add(rent)
    if r.random() < 0.5:
        answer = owner
        q = r.choice([f"Who is the owner of {asked}?", f"What's the landlord's name for {asked}?"])
    else:
        answer = rent
        q = r.choice([f"How much do I pay for {asked}?", f"What is the monthly rent on {asked}?"])
    plant = r.choice(
        [
            f"{said[0].upper() + said[1:]} belongs to {owner} and costs {rent}.",
            f"We pay {rent} for {said}; the owner is {owner}.",
            f"{owner} rents us {said} for {rent}.",
        ]
    )
    reply = r.choice(
        [
            "Thanks, that helps me understand the situation.",
            "Okay, let's look at your rights.",
            "Good to know the details.",
        ]
    )
    return Episode(
        "flat", r.choice(FLAT_OPEN), plant, reply, answer, q, [(a.format(cue=_again(r, cue)), b) for a, b in FLAT_TURNS]
    )


SUB_CUES = [
    Cue(("my gym membership", "the gym"), ("the fitness club", "the gym subscription")),
    Cue(("the streaming service", "my video streaming subscription"), ("the TV streaming plan", "the film service")),
    Cue(("my phone contract", "the mobile plan"), ("the cell phone plan", "my mobile subscription")),
    Cue(("the broadband", "our internet contract"), ("the home internet", "the wifi provider")),
    Cue(("the meal kit delivery", "the recipe box subscription"), ("the weekly food box", "the meal kits")),
    Cue(
        ("my language app subscription", "the language learning app"),
        ("the app for learning languages", "the language course app"),
    ),
]
SUB_TURNS = [
    ("How do I cancel without a fee?", "Check the minimum term; after it you can usually cancel with notice."),
    ("Can I pause instead of cancelling?", "Many services allow a pause of one to three months."),
    ("Is the annual plan better value?", "If you are sure to use it all year, yes; otherwise monthly is safer."),
    ("They charged me twice, what now?", "Contact support with the dates; ask for a refund of the duplicate."),
    ("How do I keep track of all my subscriptions?", "A simple list with renewal dates, checked every month."),
    ("Should I switch providers for {cue}?", "Compare prices yearly; loyalty rarely gets the best deal."),
]
SUB_OPEN = [
    "I have a billing issue.",
    "Question about a subscription.",
    "I'm trying to cut my monthly costs.",
    "Hi, account problem.",
]
SUB_GENERIC = [
    "How do I budget better each month?",
    "Which subscriptions are worth paying for?",
    "How do I stop free trials from renewing?",
    "How do I negotiate a lower bill?",
]


def sub(u: User) -> Episode | None:
    r = u.rng
    cue = u.cue("sub", SUB_CUES)
    if cue is None:
        return None
    said, asked = said_and_asked(r, cue)
    acct = u.number("account {}")
    answer = acct
    q = r.choice([f"What is my account number with {asked}?", f"Which customer number do I have for {asked}?"])
    plant = r.choice(
        [
            f"For {said} my number is {acct}.",
            f"It's {acct}, the one for {said}.",
            f"The reference for {said} is {acct}.",
        ]
    )
    reply = r.choice(
        ["Thanks, keep that number handy for support.", "Okay, let's see what your options are.", "Got it."]
    )
    return Episode(
        "sub", r.choice(SUB_OPEN), plant, reply, answer, q, [(a.format(cue=_again(r, cue)), b) for a, b in SUB_TURNS]
    )


CUES = {
    "trip": TRIP_CUES,
    "order": ORDER_CUES,
    "medical": MEDICAL_CUES,
    "pet": PET_CUES,
    "repair": REPAIR_CUES,
    "gift": GIFT_CUES,
    "dinner": DINNER_CUES,
    "job": JOB_CUES,
    "race": RACE_CUES,
    "flat": FLAT_CUES,
    "sub": SUB_CUES,
}
KINDS = {  # kind -> (episode, generic openings, small talk)
    "trip": (trip, TRIP_GENERIC, TRIP_TURNS),
    "order": (order, ORDER_GENERIC, ORDER_TURNS),
    "medical": (medical, MEDICAL_GENERIC, MEDICAL_TURNS),
    "pet": (pet, PET_GENERIC, PET_TURNS),
    "car": (car, CAR_GENERIC, CAR_TURNS),
    "repair": (repair, REPAIR_GENERIC, REPAIR_TURNS),
    "gift": (gift, GIFT_GENERIC, GIFT_TURNS),
    "dinner": (dinner, DINNER_GENERIC, DINNER_TURNS),
    "job": (job, JOB_GENERIC, JOB_TURNS),
    "race": (race, RACE_GENERIC, RACE_TURNS),
    "flat": (flat, FLAT_GENERIC, FLAT_TURNS),
    "sub": (sub, SUB_GENERIC, SUB_TURNS),
}
CLOSERS = [
    ("Thanks, that's really helpful.", "You're welcome! Let me know if anything else comes up."),
    ("Perfect, that's all for now.", "Glad I could help. Good luck!"),
    ("Great, I'll do that.", "Sounds like a plan. Come back any time."),
    ("Okay, thanks a lot.", "Any time. Take care!"),
]
ACKS = ["Makes sense.", "Okay.", "Good to know.", "Thanks.", "Right.", "Got it."]
# Assistants write paragraphs, not one line: a reply is its answer, one to three more of its
# kind's sentences, sometimes a chatty first sentence and an offer at the end.
OPENERS = [
    "That's a really common question, and the honest answer is that it depends a little on your situation.",
    "Great question, and it's one a lot of people wonder about at this stage.",
    "Good thinking to sort this out ahead of time rather than at the last minute.",
    "I can help with that, and there are a couple of things worth keeping in mind.",
    "Short answer first, and then a few details that might be useful.",
    "Thanks for the extra context, that makes it much easier to give you advice that actually fits what you need.",
    "That's worth getting right, so let me walk you through the main points one at a time, starting with the basics.",
    "Happy to dig into this with you, since it's the kind of detail that can save a lot of hassle later on.",
]
OFFERS = [
    "If you like, I can turn this into a short checklist.",
    "Let me know if you want me to go into more detail.",
    "Happy to help you compare options if you share a bit more.",
    "Tell me how it goes!",
    "I can also draft a message for you if that would help.",
]
ASIDES = [
    "Sorry, one more thing.",
    "Another question while I have you.",
    "Quick follow-up.",
    "I've been meaning to ask about this.",
    "This might be a silly question.",
    "Okay, I've been thinking about what you said earlier and I have another question for you.",
    "Thanks for all of that, it really helps, and there's one more thing I'd like to understand better.",
]


def _elaborate(rng: random.Random, bot: str, turns: list[tuple[str, str]]) -> str:
    more = [a for _, a in rng.sample(turns, min(len(turns), rng.randint(1, 3))) if a != bot]
    parts = [rng.choice(OPENERS)] if rng.random() < 0.7 else []
    parts += [bot, *more]
    if rng.random() < 0.4:
        parts.append(rng.choice(OFFERS))
    return " ".join(parts)


# People mention the rest of their life in passing: a session names another episode's cue
# (often one of its own kind) without its fact, a distractor for that episode's question.
MENTIONS = [
    "By the way, I'm also sorting out {cue} this year.",
    "{Cue} is on my mind too, but that's for another day.",
    "A friend asked me about {cue} as well.",
    "Funny, I was just talking about {cue} with my partner.",
    "I still need to deal with {cue} at some point.",
]


def _mention(rng: random.Random, kind: str) -> str:
    # car cues are verbs ("test drove"), not things one mentions in passing
    pool = CUES[kind] if kind != "car" and rng.random() < 0.6 else CUES[rng.choice(sorted(set(CUES) - {"car"}))]
    cue = rng.choice(rng.choice(pool).say)
    t = rng.choice(MENTIONS)
    return t.replace("{Cue}", cue[0].upper() + cue[1:]).replace("{cue}", cue)


def _with_mentions(rng: random.Random, kind: str, msgs: list[tuple[str, str]], avoid: int | None) -> None:
    users = [i for i, (role, _) in enumerate(msgs) if role == "user" and i != avoid]
    for _ in range(rng.choice((0, 1, 1, 2))):
        i = rng.choice(users)
        msgs[i] = ("user", f"{msgs[i][1]} {_mention(rng, kind)}")


def _aside(rng: random.Random, user: str) -> str:
    return f"{rng.choice(ASIDES)} {user}" if rng.random() < 0.35 else user


def _small_talk(rng: random.Random, turns: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    picked = rng.sample(turns, min(n, len(turns)))
    out = []
    for i, (q, a) in enumerate(picked):
        chained = i and rng.random() < 0.35  # people chain their questions to the previous answer
        out.append((f"{rng.choice(ACKS)} {q}" if chained else q, a))
    return out


def _plant_turn(rng: random.Random, pairs: int) -> int:
    """Which user turn states the fact: often the first two, the tail of a long session rarely."""
    x = rng.random()
    if x < 0.6:
        return rng.choice((0, 1)) if pairs > 1 else 0
    if x < 0.85:
        return rng.randint(1, max(1, pairs // 2))
    return rng.randint(max(1, pairs // 2), pairs - 1) if pairs > 1 else 0


def episode_messages(rng: random.Random, ep: Episode) -> tuple[list[tuple[str, str]], int]:
    """The session's (role, content) pairs and the index of the message holding the fact."""
    pairs = rng.randint(3, 10)  # 6 to 20 messages
    at = _plant_turn(rng, pairs)
    talk = _small_talk(rng, ep.turns, pairs)
    msgs: list[tuple[str, str]] = []
    for i in range(pairs):
        if i == pairs - 1 and pairs > 3 and at != i:
            user, bot = rng.choice(CLOSERS)
        else:
            user, bot = talk[i % len(talk)]
        if i == 0:
            user = (
                ep.opening
                if at != 0
                else (f"{ep.opening} {ep.plant}" if rng.random() < 0.7 else f"{ep.plant} {ep.opening}")
            )
            bot = (
                ep.plant_reply
                if at == 0
                else rng.choice(["Of course. What do you need?", "Happy to help. Tell me more."])
            )
        elif i == at:
            # the fact, in the middle of what the user says: after a first sentence or before the question
            user = f"{user} {ep.plant}" if rng.random() < 0.6 else f"{ep.plant} {user}"
            bot = f"{ep.plant_reply} {bot}"
        if i != pairs - 1 or at == i:
            user, bot = (_aside(rng, user) if i else user), _elaborate(rng, bot, ep.turns)
        msgs += [("user", user), ("assistant", bot)]
    _with_mentions(rng, ep.kind, msgs, 2 * at)
    return msgs, 2 * at


def filler_messages(rng: random.Random, kind: str) -> list[tuple[str, str]]:
    _, generic, turns = KINDS[kind]
    pairs = rng.randint(3, 8)
    msgs = [("user", rng.choice(generic)), ("assistant", "Good question. Here are a few pointers.")]
    plain = [t for t in turns if "{cue}" not in t[0]]
    for q, a in _small_talk(rng, plain, pairs - 1):
        msgs += [("user", _aside(rng, q)), ("assistant", _elaborate(rng, a, plain))]
    _with_mentions(rng, kind, msgs, None)
    return msgs


def _word_in(word: str, text: str) -> bool:
    return re.search(r"(?<![\w#])" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE) is not None


def generate(seed: int = SEED) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    sessions: list[dict] = []
    probes: list[dict] = []
    kinds = list(KINDS)
    for n in range(USERS):
        uid = f"user-{n:02d}"
        u = User(random.Random(rng.getrandbits(64)), uid)
        r = u.rng
        count = r.randint(*SESSIONS)
        t = T0 + r.randint(0, 30) * DAY
        mine: list[dict] = []
        facts: list[dict] = []
        # A user comes back to a few subjects of their life: several sessions of each kind,
        # so the sessions a question must be told from share its vocabulary.
        theirs = r.sample(kinds, r.randint(*KINDS_PER_USER))
        while len(mine) < count:
            kind = r.choice(theirs)
            ep = None if r.random() < FILLER_SHARE else KINDS[kind][0](u)
            if ep is None:
                msgs, at = filler_messages(r, kind), None
            else:
                msgs, at = episode_messages(r, ep)
            sid = f"{uid}-s{len(mine):02d}"
            t += r.randint(1, 6) * DAY + r.randint(0, 12 * 3600)
            stamped = [{"role": role, "content": text, "timestamp": t + 40 * i} for i, (role, text) in enumerate(msgs)]
            mine.append(
                {
                    "session_id": sid,
                    "user_id": uid,
                    "kind": kind,
                    "started_at": t,
                    "ended_at": t + 40 * len(msgs),
                    "messages": stamped,
                }
            )
            if ep is not None:
                facts.append(
                    {
                        "session_id": sid,
                        "question": ep.question,
                        "answer": ep.answer,
                        "kind": kind,
                        "message_index": at,
                        "message_count": len(msgs),
                        "planted": ep.plant,
                    }
                )
        # The answer sits in exactly one session (its own): a fact whose answer another of the
        # user's sessions also holds is never asked.
        text_of = {s["session_id"]: "\n".join(m["content"] for m in s["messages"]) for s in mine}
        facts = [
            f for f in facts if [sid for sid, txt in text_of.items() if _word_in(f["answer"], txt)] == [f["session_id"]]
        ]
        asked_at = mine[-1]["ended_at"] + r.randint(1, 5) * DAY
        for f in sorted(r.sample(facts, min(len(facts), r.randint(*PROBES_PER_USER))), key=lambda f: f["session_id"]):
            probes.append(
                {
                    "probe_id": f"{uid}-p{len(probes):03d}",
                    "user_id": uid,
                    "asked_at": asked_at,
                    "question": f["question"],
                    "gold_session_id": f["session_id"],
                    "answer": f["answer"],
                    "kind": f["kind"],
                    "message_index": f["message_index"],
                    "message_count": f["message_count"],
                    "planted": f["planted"],
                }
            )
        sessions += mine
    return sessions, probes


def dumps(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    sessions, probes = generate()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sessions.jsonl").write_text(dumps(sessions), encoding="utf-8")
    (args.out / "probes.jsonl").write_text(dumps(probes), encoding="utf-8")
    print(f"{len(sessions)} sessions, {len(probes)} probes, {len({s['user_id'] for s in sessions})} users")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
