"""Writes the bundled feedback sample: `feedback/`, rows of a first answer, a critique of it and a refinement.

    python scripts/make_feedback_samples.py [--out ftcli/samples]

Every text comes from the lists and templates below, written for this project. Each item is a
short prompt (arithmetic, a unit conversion, a word task, a capital or a fact, words to put in
order, a sum or a chore of two or more steps) with a correct, concise answer. Its row's `output`
is a flawed first answer: a wrong result, a step left out, or the right answer buried in filler,
given rudely, or the question dodged. `feedback` says what is wrong and how to fix it, naming the
right value or the words to cut, and `refinement` applies that fix, so a critique model can learn
the feedback's phrasing and a refine model the fix. In about 15% of the rows the refinement tried
and is still wrong (a slip of its own, filler or rudeness left in, another wrong value); they have
`refinement_passed` false. Splits never share a prompt, every prompt is distinct, a refinement
never equals its output, and the output is the same on every run (seeded).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, replace
from pathlib import Path

from ftcli.data.jsonl import write_jsonl

SEED = 20240718
ROWS = {"train": 240, "validation": 60}
FAILED_SHARE = 0.15  # rows whose refinement is still wrong (`refinement_passed` false)
STYLE_FAULTS = {"padded": 0.15, "rude": 0.12, "dodge": 0.13}  # of items with a one-sentence answer; else wrong


@dataclass(frozen=True)
class Item:
    prompt: str
    answer: str  # correct and concise: the refinement
    wrong: str  # a first answer whose content is wrong or incomplete
    feedback: str  # what is wrong with `wrong`, and the fix
    still_wrong: str  # a refinement that tried and is still wrong
    styled: bool = True  # a one-sentence answer: its first answer may instead be padded, rude or a dodge


def pick(rng: random.Random, templates: list[str], **values: object) -> str:
    return rng.choice(templates).format(**values)


# --- arithmetic and conversions ------------------------------------------------------------------

SUMS = {
    "+": (["What is {a} + {b}?", "Add {a} and {b}.", "What is {a} plus {b}?", "Work out {a} + {b}."],
          ["The sum is wrong: {a} + {b} is {c}, not {w}.", "Check the addition: {a} plus {b} makes {c}, not {w}.",
           "{w} is not right; adding {b} to {a} gives {c}."]),
    "-": (["What is {a} - {b}?", "Subtract {b} from {a}.", "What is {a} minus {b}?", "Work out {a} - {b}."],
          ["The difference is wrong: {a} - {b} is {c}, not {w}.",
           "Check the subtraction: taking {b} from {a} leaves {c}, not {w}.",
           "{w} is not right; {a} minus {b} is {c}."]),
    "*": (["What is {a} * {b}?", "Multiply {a} by {b}.", "What is {a} times {b}?", "Work out {a} * {b}."],
          ["The product is wrong: {a} * {b} is {c}, not {w}.",
           "Check the multiplication: {a} times {b} makes {c}, not {w}.",
           "{w} is not right; {a} lots of {b} are {c}."]),
}


def arithmetic(rng: random.Random, n: int) -> list[Item]:
    items: list[Item] = []
    seen: set[tuple[int, str, int]] = set()
    while len(items) < n:
        op = rng.choice("+-*")
        if op == "*":
            a, b = rng.randint(3, 12), rng.randint(3, 12)
            c = a * b
        else:
            a, b = rng.randint(11, 90), rng.randint(3, 49)
            if op == "-" and b >= a:
                a, b = b + rng.randint(4, 30), a
            c = a + b if op == "+" else a - b
        if (a, op, b) in seen or (op != "-" and (b, op, a) in seen):
            continue
        seen.add((a, op, b))
        off = rng.choice([d for d in (-10, -2, -1, 1, 2, 10) if c - abs(d) > 0])
        prompts, feedback = SUMS[op]
        form = rng.choice(["{a} " + op + " {b} = {c}.", "The answer is {c}."])
        items.append(Item(pick(rng, prompts, a=a, b=b), form.format(a=a, b=b, c=c),
                          form.format(a=a, b=b, c=c + off), pick(rng, feedback, a=a, b=b, c=c, w=c + off),
                          form.format(a=a, b=b, c=c - off)))
    return items


# question, answer, the rule, the right factor, a factor first answers confuse it with
CONVERSIONS = [
    ("How many minutes are in {n} hours?", "There are {v} minutes in {n} hours.", "an hour has 60 minutes", 60, 100),
    ("How many seconds are in {n} minutes?", "There are {v} seconds in {n} minutes.", "a minute has 60 seconds",
     60, 100),
    ("How many days are in {n} weeks?", "{n} weeks have {v} days.", "a week has 7 days", 7, 5),
    ("How many centimetres are in {n} metres?", "{n} metres are {v} centimetres.", "a metre has 100 centimetres",
     100, 10),
    ("How many grams are in {n} kilograms?", "{n} kilograms are {v} grams.", "a kilogram has 1000 grams", 1000, 100),
    ("How many months are in {n} years?", "There are {v} months in {n} years.", "a year has 12 months", 12, 10),
    ("How many hours are in {n} days?", "{n} days have {v} hours.", "a day has 24 hours", 24, 12),
    ("How many millimetres are in {n} centimetres?", "{n} centimetres are {v} millimetres.",
     "a centimetre has 10 millimetres", 10, 100),
]
CONVERSION_FEEDBACK = [
    "The number is wrong: {rule}, so the answer is {n} * {f} = {v}, not {w}.",
    "That uses {g} instead of {f}. Since {rule}, it is {v}.",
    "{w} is not right, because {rule}: multiply {n} by {f} to get {v}.",
]


def conversions(rng: random.Random, per_unit: int) -> list[Item]:
    items = []
    for question, answer, rule, factor, confused in CONVERSIONS:
        for n in rng.sample(range(2, 10), per_unit):
            v, w = n * factor, n * confused
            still = rng.choice([x for x in (v - factor, v + factor) if x != w])  # one unit too few or too many
            items.append(Item(question.format(n=n), answer.format(n=n, v=v), answer.format(n=n, v=w),
                              pick(rng, CONVERSION_FEEDBACK, rule=rule, n=n, f=factor, g=confused, v=v, w=w),
                              answer.format(n=n, v=still)))
    return items


# --- word tasks ---------------------------------------------------------------------------------

PLURAL_RULES = {
    "irregular": "'{w}' has an irregular plural",
    "same": "'{w}' stays the same in the plural",
    "y": "a word ending in a consonant and 'y' changes the 'y' to 'ies'",
    "f": "here the 'f' sound becomes 'ves'",
    "es": "a word ending in 's', 'x', 'ch' or 'sh' adds 'es'",
    "o": "this word ending in 'o' adds 'es'",
}
# word, plural, a wrong plural, another wrong plural, the rule
PLURALS = [
    ("mouse", "mice", "mouses", "mices", "irregular"), ("child", "children", "childs", "childrens", "irregular"),
    ("tooth", "teeth", "tooths", "teeths", "irregular"), ("foot", "feet", "foots", "feets", "irregular"),
    ("goose", "geese", "gooses", "geeses", "irregular"), ("man", "men", "mans", "mens", "irregular"),
    ("woman", "women", "womans", "womens", "irregular"), ("ox", "oxen", "oxes", "oxens", "irregular"),
    ("sheep", "sheep", "sheeps", "sheepes", "same"), ("deer", "deer", "deers", "deeres", "same"),
    ("city", "cities", "citys", "citis", "y"), ("baby", "babies", "babys", "babyes", "y"),
    ("party", "parties", "partys", "partyes", "y"), ("puppy", "puppies", "puppys", "puppis", "y"),
    ("leaf", "leaves", "leafs", "leafes", "f"), ("knife", "knives", "knifes", "knivs", "f"),
    ("wolf", "wolves", "wolfs", "wolfes", "f"), ("shelf", "shelves", "shelfs", "shelfes", "f"),
    ("box", "boxes", "boxs", "boxies", "es"), ("church", "churches", "churchs", "churchies", "es"),
    ("dish", "dishes", "dishs", "dishies", "es"), ("bus", "buses", "buss", "busies", "es"),
    ("potato", "potatoes", "potatos", "potatoies", "o"), ("tomato", "tomatoes", "tomatos", "tomatoies", "o"),
]
PLURAL_FEEDBACK = ["{Rule}: the plural is '{p}', not '{x}'.", "'{x}' is not a word; {rule}, so write '{p}'.",
                   "Wrong plural. {Rule}, which gives '{p}'."]

# word, opposite, a word close in meaning, another close one
OPPOSITES = [
    ("hot", "cold", "warm", "boiling"), ("tall", "short", "high", "towering"), ("early", "late", "soon", "prompt"),
    ("empty", "full", "bare", "hollow"), ("fast", "slow", "quick", "rapid"), ("happy", "sad", "glad", "cheerful"),
    ("wet", "dry", "damp", "soaked"), ("rich", "poor", "wealthy", "prosperous"), ("loud", "quiet", "noisy", "booming"),
    ("hard", "soft", "firm", "solid"), ("strong", "weak", "tough", "powerful"), ("clean", "dirty", "neat", "tidy"),
    ("cheap", "expensive", "inexpensive", "low-priced"), ("near", "far", "close", "nearby"),
    ("big", "small", "large", "huge"), ("brave", "cowardly", "bold", "fearless"),
    ("heavy", "light", "weighty", "hefty"),
    ("smooth", "rough", "even", "sleek"), ("ancient", "modern", "old", "antique"), ("begin", "end", "start", "launch"),
    ("remember", "forget", "recall", "recollect"), ("accept", "refuse", "take", "receive"),
    ("arrive", "leave", "reach", "come"), ("buy", "sell", "purchase", "acquire"), ("win", "lose", "triumph", "prevail"),
    ("love", "hate", "adore", "cherish"), ("wide", "narrow", "broad", "vast"),
    ("deep", "shallow", "profound", "bottomless"),
    ("asleep", "awake", "sleeping", "dozing"), ("safe", "dangerous", "secure", "protected"),
    ("polite", "rude", "courteous", "gracious"), ("difficult", "easy", "hard", "tricky"),
    ("bright", "dark", "shiny", "brilliant"), ("sharp", "blunt", "pointed", "keen"),
]
OPPOSITE_QUESTIONS = ["What is the opposite of '{w}'?", "Give the opposite of the word '{w}'.",
                      "Which word means the opposite of '{w}'?"]
OPPOSITE_FEEDBACK = ["'{x}' means nearly the same as '{w}', not the opposite; the opposite is '{o}'.",
                     "That is a word like '{w}', not its opposite. Use '{o}'.",
                     "'{x}' is close in meaning to '{w}'. The opposite of '{w}' is '{o}'."]

WORDS = ["garden", "window", "pencil", "orange", "basket", "castle", "ladder", "rocket", "thunder", "island",
         "violin", "blanket", "journey", "harbour", "marble", "kettle", "puzzle", "lantern", "meadow", "silver"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
COUNT_FEEDBACK = ["Count again: '{word}' has {n} letters ({spelled}), not {w}.",
                  "The count is off by one: {spelled} is {n} letters.",
                  "'{word}' is spelt {spelled}, which makes {n} letters, not {w}."]
BACKWARDS_FEEDBACK = ["Two letters are swapped: '{word}' backwards is '{b}', not '{s}'.",
                      "Close, but '{pair}' should be '{fixed}': the answer is '{b}'.",
                      "Read it again from the last letter: '{b}', not '{s}'."]

# misspelling, right spelling, another misspelling, the hint
SPELLINGS = [
    ("recieve", "receive", "receeve", "with 'e' before 'i' after the 'c'"),
    ("definately", "definitely", "definitly", "with 'ite' in the middle, as in 'finite'"),
    ("seperate", "separate", "separete", "with 'par' in the middle"),
    ("tommorow", "tomorrow", "tomorow", "with one 'm' and two 'r's"),
    ("wierd", "weird", "wiered", "with 'ei' after the 'w'"),
    ("neccessary", "necessary", "necesary", "with one 'c' and two 's's"),
    ("accomodate", "accommodate", "acommodate", "with two 'c's and two 'm's"),
    ("beleive", "believe", "belive", "with 'ie' after the 'l'"),
    ("calender", "calendar", "calandar", "ending in 'dar'"),
    ("goverment", "government", "govermnent", "with an 'n' before 'ment'"),
    ("freind", "friend", "frend", "with 'ie' after the 'r'"),
    ("begining", "beginning", "beginnig", "with two 'n's before 'ing'"),
    ("untill", "until", "untel", "with one 'l' at the end"),
    ("occured", "occurred", "ocurred", "with two 'c's and two 'r's"),
    ("adress", "address", "addres", "with two 'd's and two 's's"),
    ("embarass", "embarrass", "embarras", "with two 'r's and two 's's"),
    ("truely", "truly", "truley", "with no 'e' after the 'u'"),
    ("arguement", "argument", "argumint", "with no 'e' after the 'u'"),
]
SPELLING_QUESTIONS = ["Is '{x}' spelt correctly?", "Is '{x}' the right spelling?"]
SPELLING_FEEDBACK = ["It is not: the word is spelt '{r}', {hint}.", "'{x}' is a misspelling; write '{r}', {hint}.",
                     "Wrong: the correct spelling is '{r}', {hint}."]


def word_tasks(rng: random.Random) -> list[Item]:
    items = []
    for w, p, x, y, rule in PLURALS:
        why = PLURAL_RULES[rule].format(w=w)
        answer = f"The plural of '{w}' is '{{}}'."
        items.append(Item(f"What is the plural of '{w}'?", answer.format(p), answer.format(x),
                          pick(rng, PLURAL_FEEDBACK, rule=why, Rule=why[0].upper() + why[1:], p=p, x=x),
                          answer.format(y)))
    for w, o, x, y in OPPOSITES:
        answer = f"The opposite of '{w}' is '{{}}'."
        items.append(Item(pick(rng, OPPOSITE_QUESTIONS, w=w), answer.format(o), answer.format(x),
                          pick(rng, OPPOSITE_FEEDBACK, w=w, o=o, x=x), answer.format(y)))
    words = rng.sample(WORDS, len(WORDS))
    for word in words[:10]:
        n = len(word)
        w = n + rng.choice([-1, 1])
        answer = f"'{word}' has {{}} letters."
        items.append(Item(f"How many letters are in the word '{word}'?", answer.format(NUMBER_WORDS[n]),
                          answer.format(NUMBER_WORDS[w]),
                          pick(rng, COUNT_FEEDBACK, word=word, n=NUMBER_WORDS[n], w=NUMBER_WORDS[w],
                               spelled="-".join(word)),
                          answer.format(NUMBER_WORDS[2 * n - w])))
    for word in words[10:]:
        b = word[::-1]
        i, j = rng.sample([k for k in range(len(b) - 1) if b[k] != b[k + 1]], 2)
        s, t = swapped(b, i), swapped(b, j)
        answer = f"'{word}' backwards is '{{}}'."
        items.append(Item(f"Spell the word '{word}' backwards.", answer.format(b), answer.format(s),
                          pick(rng, BACKWARDS_FEEDBACK, word=word, b=b, s=s, pair=s[i:i + 2], fixed=b[i:i + 2]),
                          answer.format(t)))
    for x, r, y, hint in SPELLINGS:
        items.append(Item(pick(rng, SPELLING_QUESTIONS, x=x), f"No, the correct spelling is '{r}'.",
                          f"Yes, '{x}' is spelt correctly.", pick(rng, SPELLING_FEEDBACK, x=x, r=r, hint=hint),
                          f"No, the correct spelling is '{y}'."))
    return items


def swapped(text: str, i: int) -> str:
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


# --- capitals and facts ---------------------------------------------------------------------------

# country, capital, two other large cities
CAPITALS = [
    ("France", "Paris", "Lyon", "Marseille"), ("Japan", "Tokyo", "Osaka", "Kyoto"),
    ("Italy", "Rome", "Milan", "Naples"),
    ("Spain", "Madrid", "Barcelona", "Seville"), ("Germany", "Berlin", "Munich", "Hamburg"),
    ("Canada", "Ottawa", "Toronto", "Vancouver"), ("Australia", "Canberra", "Sydney", "Melbourne"),
    ("Brazil", "Brasilia", "Rio de Janeiro", "Sao Paulo"), ("Egypt", "Cairo", "Alexandria", "Luxor"),
    ("Kenya", "Nairobi", "Mombasa", "Kisumu"), ("India", "New Delhi", "Mumbai", "Kolkata"),
    ("China", "Beijing", "Shanghai", "Guangzhou"), ("Russia", "Moscow", "Saint Petersburg", "Kazan"),
    ("Turkey", "Ankara", "Istanbul", "Izmir"), ("Portugal", "Lisbon", "Porto", "Braga"),
    ("Greece", "Athens", "Thessaloniki", "Patras"), ("Norway", "Oslo", "Bergen", "Trondheim"),
    ("Sweden", "Stockholm", "Gothenburg", "Malmo"), ("Poland", "Warsaw", "Krakow", "Gdansk"),
    ("Argentina", "Buenos Aires", "Cordoba", "Rosario"), ("Mexico", "Mexico City", "Guadalajara", "Monterrey"),
    ("Peru", "Lima", "Cusco", "Arequipa"), ("Morocco", "Rabat", "Casablanca", "Marrakesh"),
    ("Nigeria", "Abuja", "Lagos", "Kano"), ("South Korea", "Seoul", "Busan", "Incheon"),
    ("Vietnam", "Hanoi", "Ho Chi Minh City", "Da Nang"), ("Ireland", "Dublin", "Cork", "Galway"),
    ("Switzerland", "Bern", "Zurich", "Geneva"), ("Austria", "Vienna", "Salzburg", "Graz"),
    ("Belgium", "Brussels", "Antwerp", "Ghent"), ("Denmark", "Copenhagen", "Aarhus", "Odense"),
    ("Finland", "Helsinki", "Tampere", "Turku"), ("New Zealand", "Wellington", "Auckland", "Christchurch"),
    ("Chile", "Santiago", "Valparaiso", "Concepcion"), ("Colombia", "Bogota", "Medellin", "Cali"),
    ("Thailand", "Bangkok", "Chiang Mai", "Phuket"), ("Pakistan", "Islamabad", "Karachi", "Lahore"),
    ("Hungary", "Budapest", "Debrecen", "Szeged"), ("Czechia", "Prague", "Brno", "Ostrava"),
    ("Ghana", "Accra", "Kumasi", "Tamale"), ("Iceland", "Reykjavik", "Akureyri", "Husavik"),
    ("the United States", "Washington", "New York", "Los Angeles"),
    ("the Netherlands", "Amsterdam", "Rotterdam", "Utrecht"),
    ("Ukraine", "Kyiv", "Kharkiv", "Odesa"), ("Saudi Arabia", "Riyadh", "Jeddah", "Dammam"),
    ("Ethiopia", "Addis Ababa", "Dire Dawa", "Gondar"), ("Venezuela", "Caracas", "Maracaibo", "Valencia"),
    ("Bulgaria", "Sofia", "Plovdiv", "Varna"), ("Croatia", "Zagreb", "Split", "Dubrovnik"),
    ("Serbia", "Belgrade", "Novi Sad", "Nis"),
]
CAPITAL_QUESTIONS = ["What is the capital of {c}?", "Which city is the capital of {c}?",
                     "Name the capital city of {c}."]
CAPITAL_ANSWERS = ["The capital of {c} is {city}.", "{city} is the capital of {c}."]
CAPITAL_FEEDBACK = ["{x} is a large city in {c}, but the capital is {city}.",
                    "Not quite: the capital of {c} is {city}, not {x}.",
                    "{x} is the wrong city; the capital of {c} is {city}."]


def capitals(rng: random.Random) -> list[Item]:
    items = []
    for country, capital, other, another in CAPITALS:
        answer = rng.choice(CAPITAL_ANSWERS)
        items.append(Item(pick(rng, CAPITAL_QUESTIONS, c=country), answer.format(c=country, city=capital),
                          answer.format(c=country, city=other),
                          pick(rng, CAPITAL_FEEDBACK, c=country, city=capital, x=other),
                          answer.format(c=country, city=another)))
    return items


# question, answer, a wrong answer, the feedback on it, a refinement still wrong
FACTS = [
    ("How many legs does a spider have?", "A spider has eight legs.", "A spider has six legs.",
     "Six is the number for insects; a spider has eight legs.", "A spider has ten legs."),
    ("How many days are in a leap year?", "A leap year has 366 days.", "A leap year has 365 days.",
     "365 is an ordinary year; a leap year has one day more, 366.", "A leap year has 367 days."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet.",
     "Saturn is the largest planet.", "Saturn is the second largest; the largest planet is Jupiter.",
     "Neptune is the largest planet."),
    ("Which planet is closest to the Sun?", "Mercury is the closest planet to the Sun.",
     "Venus is the closest planet to the Sun.", "Venus is second from the Sun; Mercury is the closest.",
     "Earth is the closest planet to the Sun."),
    ("At what temperature does water boil at sea level?", "Water boils at 100 degrees Celsius.",
     "Water boils at 90 degrees Celsius.", "The boiling point at sea level is 100 degrees Celsius, not 90.",
     "Water boils at 110 degrees Celsius."),
    ("At what temperature does water freeze in Fahrenheit?", "Water freezes at 32 degrees Fahrenheit.",
     "Water freezes at 0 degrees Fahrenheit.", "0 is the freezing point in Celsius; in Fahrenheit it is 32 degrees.",
     "Water freezes at 23 degrees Fahrenheit."),
    ("How many continents are there?", "There are seven continents.", "There are five continents.",
     "Count again: there are seven continents, not five.", "There are nine continents."),
    ("What is the chemical symbol for gold?", "The symbol for gold is Au.", "The symbol for gold is Go.",
     "The symbol comes from the Latin 'aurum': it is Au, not Go.", "The symbol for gold is Ag."),
    ("What is the chemical symbol for iron?", "The symbol for iron is Fe.", "The symbol for iron is Ir.",
     "Ir is iridium; iron's symbol is Fe, from the Latin 'ferrum'.", "The symbol for iron is Fr."),
    ("How many sides does a hexagon have?", "A hexagon has six sides.", "A hexagon has eight sides.",
     "Eight sides make an octagon; a hexagon has six.", "A hexagon has five sides."),
    ("How many sides does a pentagon have?", "A pentagon has five sides.", "A pentagon has six sides.",
     "Six sides make a hexagon; a pentagon has five.", "A pentagon has four sides."),
    ("What is the largest ocean on Earth?", "The Pacific is the largest ocean.", "The Atlantic is the largest ocean.",
     "The Atlantic is the second largest; the Pacific is the largest ocean.", "The Indian Ocean is the largest ocean."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet.",
     "Charles Dickens wrote Romeo and Juliet.",
     "Dickens wrote novels such as Oliver Twist; Romeo and Juliet is by William Shakespeare.",
     "Christopher Marlowe wrote Romeo and Juliet."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa.", "Michelangelo painted the Mona Lisa.",
     "Michelangelo painted the Sistine Chapel ceiling; the Mona Lisa is by Leonardo da Vinci.",
     "Raphael painted the Mona Lisa."),
    ("What is the square root of 81?", "The square root of 81 is 9.", "The square root of 81 is 8.",
     "8 * 8 is 64; the square root of 81 is 9, since 9 * 9 is 81.", "The square root of 81 is 7."),
    ("What is the square root of 144?", "The square root of 144 is 12.", "The square root of 144 is 14.",
     "14 * 14 is 196; the square root of 144 is 12.", "The square root of 144 is 11."),
    ("How many bones does an adult human have?", "An adult human has 206 bones.", "An adult human has 300 bones.",
     "A baby has about 300 bones, but many join together; an adult has 206.", "An adult human has 212 bones."),
    ("What is the tallest mountain above sea level?", "Mount Everest is the tallest mountain.",
     "K2 is the tallest mountain.", "K2 is the second tallest; Mount Everest is the tallest above sea level.",
     "Kangchenjunga is the tallest mountain."),
    ("What do bees make from nectar?", "Bees make honey from nectar.", "Bees make wax from nectar.",
     "Bees make wax in their bodies; from nectar they make honey.", "Bees make pollen from nectar."),
    ("What language do most people in Brazil speak?", "Most people in Brazil speak Portuguese.",
     "Most people in Brazil speak Spanish.",
     "Spanish is spoken in most of South America, but Brazil speaks Portuguese.",
     "Most people in Brazil speak Italian."),
    ("What colour do you get when you mix blue and yellow?", "Blue and yellow make green.",
     "Blue and yellow make purple.", "Purple comes from blue and red; blue and yellow make green.",
     "Blue and yellow make orange."),
    ("What colour do you get when you mix red and yellow?", "Red and yellow make orange.",
     "Red and yellow make brown.", "Red and yellow make orange, not brown.", "Red and yellow make pink."),
    ("Which organ pumps blood around the body?", "The heart pumps blood around the body.",
     "The lungs pump blood around the body.", "The lungs take in air; the heart is what pumps blood.",
     "The liver pumps blood around the body."),
    ("How many players does a football team have on the field?", "A team has eleven players on the field.",
     "A team has ten players on the field.", "Count the goalkeeper too: a team has eleven players on the field.",
     "A team has twelve players on the field."),
    ("What is the smallest prime number?", "The smallest prime number is 2.", "The smallest prime number is 1.",
     "1 is not a prime number; the smallest prime is 2.", "The smallest prime number is 3."),
    ("Which metal is liquid at room temperature?", "Mercury is liquid at room temperature.",
     "Aluminium is liquid at room temperature.",
     "Aluminium is solid at room temperature; the liquid metal is mercury.", "Lead is liquid at room temperature."),
    ("How many planets are in our solar system?", "There are eight planets.", "There are nine planets.",
     "Pluto is no longer counted as a planet, so there are eight, not nine.", "There are seven planets."),
    ("What is the currency of Japan?", "Japan uses the yen.", "Japan uses the yuan.",
     "The yuan is China's currency; Japan uses the yen.", "Japan uses the won."),
    ("What is the fastest land animal?", "The cheetah is the fastest land animal.",
     "The lion is the fastest land animal.", "Lions are fast, but the cheetah is the fastest land animal.",
     "The horse is the fastest land animal."),
    ("What gas do plants take in to make their food?", "Plants take in carbon dioxide.", "Plants take in oxygen.",
     "Plants give off oxygen; they take in carbon dioxide to make food.", "Plants take in nitrogen."),
    ("What is the longest river in Africa?", "The Nile is the longest river in Africa.",
     "The Congo is the longest river in Africa.", "The Congo is the second longest; the Nile is the longest.",
     "The Niger is the longest river in Africa."),
    ("What does a caterpillar turn into?", "A caterpillar turns into a butterfly or a moth.",
     "A caterpillar turns into a bee.", "Bees grow from their own larvae; a caterpillar becomes a butterfly or a moth.",
     "A caterpillar turns into a beetle."),
    ("How many hearts does an octopus have?", "An octopus has three hearts.", "An octopus has one heart.",
     "An octopus has three hearts, not one: two of them pump blood through the gills.", "An octopus has two hearts."),
    ("What is the hardest natural material?", "Diamond is the hardest natural material.",
     "Granite is the hardest natural material.", "Granite is a hard rock, but diamond is the hardest natural material.",
     "Quartz is the hardest natural material."),
]


def facts() -> list[Item]:
    return [Item(*fact) for fact in FACTS]


# --- putting things in order ------------------------------------------------------------------------

SENTENCES = [
    "we went to the park", "the cat sat on the warm mat", "she reads a book every night",
    "my brother plays football on sundays", "the train leaves at nine", "they ate lunch in the garden",
    "he forgot his keys at home", "the baby is sleeping upstairs", "we need more milk for breakfast",
    "the shop closes at six tonight", "he painted the fence green", "the children ran across the field",
    "please close the door quietly", "our teacher gave us homework", "the bird built a nest in the tree",
    "it rained all day yesterday",
]
ORDER_FEEDBACK = ["'{x} {y}' is the wrong way round: it should be '{y} {x}'.",
                  "Two words are swapped: write '{y} {x}' instead of '{x} {y}'.",
                  "Almost: '{y}' comes before '{x}' in this sentence."]
FRUITS = ["pear", "apple", "mango", "cherry", "banana", "grape", "lemon", "plum", "kiwi", "peach", "melon", "fig"]
ANIMALS = ["horse", "zebra", "tiger", "otter", "camel", "rabbit", "eagle", "mouse", "lion", "whale", "snake", "deer"]
ALPHABET_FEEDBACK = ["'{y}' comes before '{x}' in the alphabet, so swap them.",
                     "The order is off: '{y}' goes before '{x}'.",
                     "Check the letters again: '{y}' belongs ahead of '{x}'."]
NUMBER_FEEDBACK = ["{y} is smaller than {x}, so it comes first.", "The order is off: {y} goes before {x}.",
                   "{x} and {y} are the wrong way round."]


def sentence(words: list[str]) -> str:
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def adjacent_swaps(words: list[str]) -> list[int]:
    return [i for i in range(len(words) - 1) if words[i] != words[i + 1]]


def swap(words: list[str], i: int) -> list[str]:
    out = words[:]
    out[i], out[i + 1] = out[i + 1], out[i]
    return out


def orders(rng: random.Random) -> list[Item]:
    items = []
    for text in SENTENCES:
        words = text.split()
        shuffled = words[:]
        while shuffled == words:
            rng.shuffle(shuffled)
        i, j = rng.sample(adjacent_swaps(words), 2)
        items.append(Item(f"Put these words in order to make a sentence: {' '.join(shuffled)}.", sentence(words),
                          sentence(swap(words, i)), pick(rng, ORDER_FEEDBACK, x=words[i + 1], y=words[i]),
                          sentence(swap(words, j))))
    for pool in (FRUITS, ANIMALS):
        for _ in range(4):
            shown = rng.sample(pool, 4)
            ordered = sorted(shown)
            if shown == ordered:
                shown = shown[::-1]
            i, j = rng.sample(range(3), 2)
            items.append(Item(f"Put these words in alphabetical order: {', '.join(shown)}.", ", ".join(ordered) + ".",
                              ", ".join(swap(ordered, i)) + ".",
                              pick(rng, ALPHABET_FEEDBACK, x=ordered[i + 1], y=ordered[i]),
                              ", ".join(swap(ordered, j)) + "."))
    for _ in range(8):
        shown = rng.sample(range(2, 99), 4)
        ordered = sorted(shown)
        if shown == ordered:
            shown = shown[::-1]
        i, j = rng.sample(range(3), 2)
        listed = ", ".join
        items.append(Item(f"Sort these numbers from smallest to largest: {listed(map(str, shown))}.",
                          listed(map(str, ordered)) + ".", listed(map(str, swap(ordered, i))) + ".",
                          pick(rng, NUMBER_FEEDBACK, x=ordered[i + 1], y=ordered[i]),
                          listed(map(str, swap(ordered, j))) + "."))
    return items


# --- answers that miss a step ---------------------------------------------------------------------------

NAMES = ["Sam", "Mia", "Leo", "Ana", "Tom", "Zoe", "Ben", "Ivy", "Max", "Eva", "Raj", "Lena", "Omar", "Nina", "Kai",
         "Rosa"]
THINGS = ["apples", "stickers", "marbles", "pencils", "cards", "shells", "stamps", "buttons"]


def two_steps(rng: random.Random, n: int) -> list[Item]:
    items = []
    for k in range(n):
        if k % 2:
            a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 5)
            s, r = a + b, (a + b) * c
            items.append(Item(f"What is ({a} + {b}) * {c}?", f"{a} + {b} = {s}, and {s} * {c} = {r}.",
                              f"{a} + {b} = {s}.",
                              f"That is only the first step: {s} still has to be multiplied by {c}, which gives {r}.",
                              f"{a} + {b} = {s}, and {s} * {c} = {r + c}."))
        else:
            a, b, c = rng.randint(3, 9), rng.randint(3, 9), rng.randint(2, 9)
            p, r = a * b, a * b - c
            items.append(Item(f"What is {a} * {b} - {c}?", f"{a} * {b} = {p}, and {p} - {c} = {r}.",
                              f"{a} * {b} = {p}.",
                              f"You stopped after the multiplication: take away {c} as well, so {p} - {c} = {r}.",
                              f"{a} * {b} = {p}, and {p} - {c} = {r - 1}."))
    return [replace(item, styled=False) for item in items]


def word_problems(rng: random.Random, n: int) -> list[Item]:
    items = []
    names = rng.sample(NAMES, len(NAMES))
    for k in range(n):
        name, things, kind = names[k % len(names)], rng.choice(THINGS), k % 4
        if kind == 0:
            a, b, c = rng.randint(4, 20), rng.randint(2, 12), rng.randint(2, 6)
            s, r = a + b, a + b - c
            items.append(Item(
                f"{name} has {a} {things}, buys {b} more and then gives {c} to a friend. How many {things} are left?",
                f"{a} + {b} = {s}, and {s} - {c} = {r}, so {name} has {r} {things} left.",
                f"{name} has {a} + {b} = {s} {things}.",
                f"You forgot that {name} gives {c} away: {s} - {c} = {r} {things} are left.",
                f"{a} + {b} = {s}, and {s} + {c} = {s + c}, so {name} has {s + c} {things} left."))
        elif kind == 1:
            a, b, c = rng.randint(3, 9), rng.randint(2, 6), rng.randint(1, 5)
            p, r = a * b, a * b - c
            items.append(Item(
                f"A box holds {a} {things}. {name} has {b} full boxes and uses {c} {things}. How many are left?",
                f"{b} boxes hold {a} * {b} = {p}, and {p} - {c} = {r} {things} are left.",
                f"{b} boxes hold {a} * {b} = {p} {things}.",
                f"That leaves out the {c} {things} {name} uses: {p} - {c} = {r} are left.",
                f"{b} boxes hold {a} * {b} = {p}, and {p} - {c} = {r + 1} {things} are left."))
        elif kind == 2:
            a, b, c = rng.randint(5, 20), rng.randint(2, 7), rng.randint(3, 15)
            p, r = a * b, a * b + c
            items.append(Item(
                f"{name} reads {a} pages a day for {b} days and then {c} more pages. How many pages is that in all?",
                f"{a} * {b} = {p}, and {p} + {c} = {r} pages in all.",
                f"{name} reads {a} * {b} = {p} pages.",
                f"Add the last {c} pages too: {p} + {c} = {r} pages in all.",
                f"{a} * {b} = {p}, and {p} - {c} = {p - c} pages in all."))
        else:
            a, b = rng.randint(2, 4), rng.randint(2, 4)
            note = rng.choice([20, 50])
            p, r = a * b, note - a * b
            items.append(Item(
                f"{name} buys {a} tickets at {b} pounds each and pays with a {note} pound note. "
                "How much change is there?",
                f"The tickets cost {a} * {b} = {p} pounds, so the change is {note} - {p} = {r} pounds.",
                f"The tickets cost {a} * {b} = {p} pounds.",
                f"That is the cost, not the change: {note} - {p} = {r} pounds come back.",
                f"The tickets cost {a} * {b} = {p} pounds, so the change is {note} - {p} = {r + 10} pounds."))
    return [replace(item, styled=False) for item in items]


PROCEDURES = [
    ("How do I make a cup of tea?",
     ["put a tea bag in a cup", "pour in boiling water", "wait three minutes", "take the bag out"]),
    ("How do I boil an egg?",
     ["put the egg in a pan of cold water", "bring the water to the boil", "cook it for eight minutes",
      "cool it in cold water"]),
    ("How do I post a letter?",
     ["put the letter in an envelope", "seal the envelope", "write the address on the front",
      "stick on a stamp"]),
    ("How do I plant a seed in a pot?",
     ["fill the pot with soil", "push the seed in about a finger deep", "cover it with soil", "water it"]),
    ("How do I wash my hands properly?",
     ["wet your hands", "rub them with soap for twenty seconds", "rinse them under running water",
      "dry them on a clean towel"]),
    ("How do I make toast?",
     ["put a slice of bread in the toaster", "press the lever down", "wait until it pops up", "spread butter on it"]),
    ("How do I change a light bulb?",
     ["switch off the light", "let the old bulb cool", "unscrew it", "screw in the new bulb"]),
    ("How do I brush my teeth?",
     ["put toothpaste on the brush", "brush every tooth for two minutes", "spit out the toothpaste",
      "rinse the brush"]),
    ("How do I make a jam sandwich?",
     ["take two slices of bread", "spread jam on one of them", "put the other slice on top", "cut it in half"]),
    ("How do I fix a flat bike tyre?",
     ["take the wheel off", "find the hole in the tube", "put a patch over it", "pump the tyre up again"]),
    ("How do I wash a load of clothes?",
     ["sort the clothes by colour", "put them in the machine with detergent", "run the wash",
      "hang them up to dry"]),
    ("How do I cook pasta?",
     ["boil a large pan of salted water", "add the pasta", "cook it for about ten minutes", "drain it"]),
    ("How do I save a new document on a computer?",
     ["open the file menu", "choose save as", "type a name for the document", "press the save button"]),
    ("How do I wrap a present?",
     ["cut enough paper to cover the box", "fold it around the box", "tape the edges down", "add a ribbon"]),
    ("How do I cross a busy road safely?",
     ["stop at the kerb", "look both ways", "wait for a gap in the traffic", "walk straight across"]),
    ("How do I clean a window?",
     ["wipe off the dust", "spray on some glass cleaner", "wipe it with a soft cloth", "polish it dry"]),
]
STEP_FEEDBACK = ["A step is missing between '{prev}' and '{next}': you need to {missing}.",
                 "You skipped a step: {missing} after you {prev}.",
                 "That leaves out '{missing}', which comes right after '{prev}'."]


def steps(words: list[str]) -> str:
    text = ", ".join(words[:-1]) + " and " + words[-1]
    return text[0].upper() + text[1:] + "."


def procedures(rng: random.Random) -> list[Item]:
    items = []
    for prompt, parts in PROCEDURES:
        i = rng.choice([1, 2])  # a middle step, so what is left still reads as instructions
        kept = parts[:i] + parts[i + 1:]
        items.append(Item(prompt, steps(parts), steps(kept),
                          pick(rng, STEP_FEEDBACK, prev=parts[i - 1], next=parts[i + 1], missing=parts[i]),
                          steps(kept + [parts[i]]), styled=False))  # the step added, but at the end
    return items


# --- first answers that are padded, rude or a dodge ---------------------------------------------------

PADDING = {
    "before": ["What a lovely question to think about!", "Let me take a moment to think this through carefully.",
               "People often wonder about this, so it is worth going over.",
               "Thank you so much for asking such an interesting question.",
               "Before I answer, I want to say I am always happy to help."],
    "after": ["I hope this helps, and feel free to ask me anything else!",
              "There is always more to learn, so keep asking questions.",
              "Let me know if you would like me to explain it in more detail.",
              "Questions like this one are what make learning so much fun."],
}
PADDING_FEEDBACK = {
    "before": ["The answer is right, but '{pad}' is filler; start with the answer.",
               "Too long: cut the opening sentence and keep only the answer.",
               "Drop the introduction; one short sentence answers this."],
    "after": ["The answer is right, but '{pad}' adds nothing; stop after the answer.",
              "Too long: cut the closing sentence and keep only the answer.",
              "Leave out the last sentence; the answer alone is enough."],
}
SHORT_FILLER = {"before": ["Good question!", "Sure thing!", "Happy to help!"],
                "after": ["Hope that helps!", "Ask me anything else!", "Have a nice day!"]}
RUDE = {
    "before": ["Ugh, fine.", "Seriously? Fine.", "What a silly question.", "Honestly, this is easy."],
    "after": ["Everyone knows that.", "Try to remember it this time.", "Was that so hard?",
              "Stop asking me easy things."],
}
RUDE_ALONE = ["Look it up yourself.", "Why would I tell you that?", "Ask someone who cares.",
              "Work it out on your own.", "That is not worth my time."]
RUDE_FEEDBACK = ["The answer is right, but '{rude}' is rude; leave it out.",
                 "Drop '{rude}', which is rude, and keep the answer.",
                 "Correct, but '{rude}' sounds unkind: remove it."]
RUDE_ALONE_FEEDBACK = ["This is rude and gives no answer. Reply politely with the answer: {answer}",
                       "Don't brush the question off; answer it: {answer}",
                       "That is unkind and unhelpful. Just give the answer: {answer}"]
STILL_RUDE = ["Now stop bothering me.", "Pay attention next time.", "Obviously."]
DODGES = ["I'd rather not say.", "That's hard to say.", "It depends on a lot of things.", "Maybe ask someone else.",
          "I'm not sure anyone knows.", "Let's talk about something else.", "You could look it up somewhere."]
DODGE_FEEDBACK = ["This dodges a question with a clear answer. Give it: {answer}",
                  "'{dodge}' avoids the question, which has a simple answer: {answer}",
                  "Don't avoid the question; answer it directly: {answer}"]


def first_answer(item: Item, fault: str, passed: bool, rng: random.Random) -> tuple[str, str, str]:
    """The output, feedback and refinement of an item's row for one kind of fault."""
    if fault == "wrong":
        return item.wrong, item.feedback, item.answer if passed else item.still_wrong
    side = rng.choice(["before", "after"])
    if fault == "padded":
        pad = rng.choice(PADDING[side])
        output = f"{pad} {item.answer}" if side == "before" else f"{item.answer} {pad}"
        filler = rng.choice(SHORT_FILLER[side])
        still = f"{filler} {item.answer}" if side == "before" else f"{item.answer} {filler}"
        return output, pick(rng, PADDING_FEEDBACK[side], pad=pad), item.answer if passed else still
    if fault == "rude":
        still = f"{item.answer} {rng.choice(STILL_RUDE)}"
        if rng.random() < 0.4:
            return rng.choice(RUDE_ALONE), pick(rng, RUDE_ALONE_FEEDBACK, answer=item.answer), \
                item.answer if passed else still
        rude = rng.choice(RUDE[side])
        output = f"{rude} {item.answer}" if side == "before" else f"{item.answer} {rude}"
        return output, pick(rng, RUDE_FEEDBACK, rude=rude), item.answer if passed else still
    dodge = rng.choice(DODGES)
    return dodge, pick(rng, DODGE_FEEDBACK, dodge=dodge, answer=item.answer), item.answer if passed else item.wrong


# --- the sample -------------------------------------------------------------------------------------------


def items(rng: random.Random) -> list[Item]:
    pool = (arithmetic(rng, 45) + conversions(rng, 4) + word_tasks(rng) + capitals(rng) + facts() + orders(rng)
            + two_steps(rng, 12) + word_problems(rng, 16) + procedures(rng))
    prompts = [item.prompt for item in pool]
    assert len(set(prompts)) == len(prompts), "every prompt is distinct"
    rng.shuffle(pool)
    return pool


def rows(split: str, chosen: list[Item], rng: random.Random) -> list[dict[str, object]]:
    failed = set(rng.sample(range(len(chosen)), round(FAILED_SHARE * len(chosen))))
    kinds, weights = zip(*STYLE_FAULTS.items())
    out: list[dict[str, object]] = []
    for i, item in enumerate(chosen):
        fault = "wrong"
        if item.styled and rng.random() < sum(weights):
            fault = rng.choices(kinds, weights)[0]
        output, feedback, refinement = first_answer(item, fault, i not in failed, rng)
        assert output != refinement and feedback and refinement, item.prompt
        assert (refinement == item.answer) == (i not in failed), item.prompt
        out.append({"id": f"fb-{split}-{i + 1:04d}", "prompt": item.prompt, "output": output, "feedback": feedback,
                    "refinement": refinement, "refinement_passed": i not in failed})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "ftcli" / "samples")
    out = parser.parse_args().out
    rng = random.Random(SEED)
    pool = items(rng)
    needed = sum(ROWS.values())
    assert len(pool) >= needed, f"{len(pool)} prompts, {needed} needed"
    splits = {"train": pool[: ROWS["train"]], "validation": pool[ROWS["train"]: needed]}
    for split, chosen in splits.items():
        write_jsonl(out / "feedback" / f"{split}.jsonl", rows(split, chosen, rng))


if __name__ == "__main__":
    main()
