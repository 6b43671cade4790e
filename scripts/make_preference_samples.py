"""Writes the bundled preference samples: `reward_model/` and `preference/` (the same pairs) and `kto/`.

    python scripts/make_preference_samples.py [--out ftcli/samples]

Every text comes from the lists and templates below, written for this project. Each item is a
short prompt (arithmetic, a factual question, a word task, everyday advice) with a correct,
helpful and concise answer and a wrong one. A pair keeps the good answer as `chosen`; its
`rejected` answer is the wrong one, or the question dodged, answered rudely, or buried in
padding, so a small model can learn what separates them. The KTO rows are the same items
unpaired: a `completion` and whether it is desirable. Splits never share a prompt, no rejected
answer is written twice or equals a good one, and the output is the same on every run (seeded).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

from ftcli.data.jsonl import write_jsonl

SEED = 20240611
PAIRS = {"train": 240, "validation": 60}
KTO = {"train": (90, 90, 30), "validation": (18, 18, 6)}  # prompts with both rows, good only, bad only
REJECTIONS = {"wrong": 0.35, "evasive": 0.2, "rude": 0.2, "padded": 0.25}
SYSTEM_SHARE = 0.1


@dataclass(frozen=True)
class Item:
    prompt: str
    good: str
    wrong: str
    topic: str


SYSTEM_PROMPTS = [
    "Answer in one short sentence.",
    "You are a friendly tutor for young students.",
    "You are a helpful assistant. Be brief and accurate.",
    "You help people with everyday questions at home.",
    "Keep your answers short and correct.",
]

# --- arithmetic, conversions, numbers -------------------------------------------------------

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen"]


def arithmetic(rng: random.Random, n: int) -> list[Item]:
    templates = {
        "+": ["What is {a} plus {b}?", "Add {a} and {b}.", "What do you get if you add {a} to {b}?",
              "Can you work out {a} + {b} for me?"],
        "-": ["What is {a} minus {b}?", "Subtract {b} from {a}.", "If I have {a} and take away {b}, what is left?"],
        "*": ["What is {a} times {b}?", "Multiply {a} by {b}.", "What is the product of {a} and {b}?"],
    }
    answers = {"+": "{a} plus {b} is {c}.", "-": "{a} minus {b} is {c}.", "*": "{a} times {b} is {c}."}
    items, seen = [], set()
    while len(items) < n:
        op = rng.choice("+-*")
        if op == "*":
            a, b = rng.randint(3, 12), rng.randint(3, 12)
            c = a * b
        else:
            a, b = rng.randint(12, 95), rng.randint(4, 60)
            if op == "-" and b >= a:
                a, b = b + rng.randint(5, 30), a
            c = a + b if op == "+" else a - b
        prompt = rng.choice(templates[op]).format(a=a, b=b)
        if prompt in seen or (op != "*" and f"{b} {op} {a}" in seen):
            continue
        off = rng.choice([-10, -2, -1, 1, 2, 10])
        good = rng.choice([answers[op], "The answer is {c}.", "It's {c}."]).format(a=a, b=b, c=c)
        wrong = rng.choice([answers[op], "The answer is {c}.", "It's {c}."]).format(a=a, b=b, c=c + off)
        if {good, wrong} & seen:  # a bare result ("It's 45.") answers one prompt only
            continue
        seen.update({prompt, f"{a} {op} {b}", good, wrong})
        items.append(Item(prompt, good, wrong, "numbers"))
    return items


CONVERSIONS = [
    ("How many minutes are in {n} hours?", "There are {v} minutes in {n} hours.", 60, range(2, 10)),
    ("How many seconds are in {n} minutes?", "There are {v} seconds in {n} minutes.", 60, range(2, 10)),
    ("How many days are in {n} weeks?", "{n} weeks have {v} days.", 7, range(2, 12)),
    ("How many centimetres are in {n} metres?", "{n} metres are {v} centimetres.", 100, range(2, 10)),
    ("How many grams are in {n} kilograms?", "{n} kilograms are {v} grams.", 1000, range(2, 8)),
    ("How many months are in {n} years?", "There are {v} months in {n} years.", 12, range(2, 10)),
    ("How many hours are in {n} days?", "{n} days have {v} hours.", 24, range(2, 8)),
]


def conversions(rng: random.Random, per_unit: int) -> list[Item]:
    items = []
    for question, answer, factor, counts in CONVERSIONS:
        for n in rng.sample(list(counts), per_unit):
            offsets = [-factor, factor, -10, 10] if factor > 10 else [-1, 1, -2, 2]
            wrong = n * factor + rng.choice(offsets)
            items.append(Item(question.format(n=n), answer.format(n=n, v=n * factor),
                              answer.format(n=n, v=wrong), "numbers"))
    return items


def number_orders(rng: random.Random, n: int) -> list[Item]:
    items = []
    for _ in range(n):
        numbers = rng.sample(range(2, 99), 4)
        shown = ", ".join(map(str, numbers))
        ordered = sorted(numbers)
        muddled = ordered[:]
        i = rng.randrange(3)
        muddled[i], muddled[i + 1] = muddled[i + 1], muddled[i]
        items.append(Item(f"Put these numbers in order from smallest to largest: {shown}.",
                          ", ".join(map(str, ordered)) + ".", ", ".join(map(str, muddled)) + ".", "numbers"))
    return items


DECIMALS = [("0.5", "0.45"), ("0.7", "0.65"), ("1.2", "1.15"), ("0.9", "0.89"), ("2.5", "2.45"),
            ("0.3", "0.25"), ("3.1", "3.09"), ("0.8", "0.75")]


def decimals() -> list[Item]:
    return [Item(f"Which is larger, {small} or {big}?" if i % 2 else f"Which number is bigger: {big} or {small}?",
                 f"{big} is larger than {small}.", f"{small} is larger than {big}.", "numbers")
            for i, (big, small) in enumerate(DECIMALS)]


# --- facts ------------------------------------------------------------------------------------

CAPITALS = [
    ("France", "Paris", "Lyon"), ("Japan", "Tokyo", "Osaka"), ("Italy", "Rome", "Milan"),
    ("Spain", "Madrid", "Barcelona"), ("Germany", "Berlin", "Munich"), ("Canada", "Ottawa", "Toronto"),
    ("Australia", "Canberra", "Sydney"), ("Brazil", "Brasilia", "Rio de Janeiro"), ("Egypt", "Cairo", "Alexandria"),
    ("Kenya", "Nairobi", "Mombasa"), ("India", "New Delhi", "Mumbai"), ("China", "Beijing", "Shanghai"),
    ("Russia", "Moscow", "Saint Petersburg"), ("Turkey", "Ankara", "Istanbul"), ("Portugal", "Lisbon", "Porto"),
    ("Greece", "Athens", "Thessaloniki"), ("Norway", "Oslo", "Bergen"), ("Sweden", "Stockholm", "Gothenburg"),
    ("Poland", "Warsaw", "Krakow"), ("Argentina", "Buenos Aires", "Cordoba"), ("Mexico", "Mexico City", "Guadalajara"),
    ("Peru", "Lima", "Cusco"), ("Morocco", "Rabat", "Casablanca"), ("Nigeria", "Abuja", "Lagos"),
    ("South Korea", "Seoul", "Busan"), ("Vietnam", "Hanoi", "Ho Chi Minh City"), ("Ireland", "Dublin", "Cork"),
    ("Switzerland", "Bern", "Zurich"), ("Austria", "Vienna", "Salzburg"), ("Belgium", "Brussels", "Antwerp"),
    ("Denmark", "Copenhagen", "Aarhus"), ("Finland", "Helsinki", "Tampere"), ("New Zealand", "Wellington", "Auckland"),
    ("Chile", "Santiago", "Valparaiso"), ("Colombia", "Bogota", "Medellin"), ("Thailand", "Bangkok", "Chiang Mai"),
    ("Pakistan", "Islamabad", "Karachi"), ("Hungary", "Budapest", "Debrecen"), ("Czechia", "Prague", "Brno"),
    ("Ghana", "Accra", "Kumasi"), ("Iceland", "Reykjavik", "Akureyri"), ("Cuba", "Havana", "Santiago de Cuba"),
]
CAPITAL_QUESTIONS = ["What is the capital of {c}?", "Which city is the capital of {c}?",
                     "Name the capital city of {c}.", "What's the capital of {c}?"]
CAPITAL_ANSWERS = ["The capital of {c} is {city}.", "{city} is the capital of {c}.", "{city}."]


def capitals(rng: random.Random) -> list[Item]:
    items = []
    for country, capital, other in CAPITALS:
        answer = rng.choice(CAPITAL_ANSWERS)
        items.append(Item(rng.choice(CAPITAL_QUESTIONS).format(c=country), answer.format(c=country, city=capital),
                          answer.format(c=country, city=other), "geography"))
    return items


FACTS = [
    ("How many legs does a spider have?", "A spider has eight legs.", "A spider has six legs."),
    ("How many days are in a leap year?", "A leap year has 366 days.", "A leap year has 365 days."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system.",
     "Saturn is the largest planet in our solar system."),
    ("Which planet is closest to the Sun?", "Mercury is the closest planet to the Sun.",
     "Venus is the closest planet to the Sun."),
    ("What gas do plants take in from the air to make their food?", "Plants take in carbon dioxide.",
     "Plants take in oxygen to make their food."),
    ("At what temperature does water boil at sea level?", "Water boils at 100 degrees Celsius at sea level.",
     "Water boils at 80 degrees Celsius at sea level."),
    ("At what temperature does water freeze, in Fahrenheit?", "Water freezes at 32 degrees Fahrenheit.",
     "Water freezes at 0 degrees Fahrenheit."),
    ("How many continents are there?", "There are seven continents.", "There are nine continents."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au.",
     "The chemical symbol for gold is Gd."),
    ("What is the chemical symbol for sodium?", "Sodium's symbol is Na.", "Sodium's symbol is So."),
    ("How many sides does a hexagon have?", "A hexagon has six sides.", "A hexagon has eight sides."),
    ("How many sides does a pentagon have?", "A pentagon has five sides.", "A pentagon has seven sides."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest.", "The Indian Ocean is the largest."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet.",
     "Charles Dickens wrote Romeo and Juliet."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa.",
     "Vincent van Gogh painted the Mona Lisa."),
    ("What is the hardest natural material?", "Diamond is the hardest natural material.",
     "Granite is the hardest natural material."),
    ("What is the square root of 81?", "The square root of 81 is 9.", "The square root of 81 is 8."),
    ("How many bones does an adult human have?", "An adult human has 206 bones.", "An adult human has 312 bones."),
    ("What is the tallest mountain above sea level?", "Mount Everest is the tallest mountain above sea level.",
     "Mont Blanc is the tallest mountain above sea level."),
    ("What is the longest river in South America?", "The Amazon is the longest river in South America.",
     "The Orinoco is the longest river in South America."),
    ("What do bees make from nectar?", "Bees make honey from nectar.", "Bees make wax from nectar."),
    ("What is the main language spoken in Brazil?", "Most people in Brazil speak Portuguese.",
     "Most people in Brazil speak Spanish."),
    ("What is the largest animal that has ever lived?", "The blue whale is the largest known animal.",
     "The African elephant is the largest known animal."),
    ("What colour do you get when you mix blue and yellow?", "Blue and yellow make green.",
     "Blue and yellow make purple."),
    ("What colour do you get when you mix red and white?", "Red and white make pink.", "Red and white make orange."),
    ("Which organ pumps blood around the body?", "The heart pumps blood around the body.",
     "The liver pumps blood around the body."),
    ("How many players does a soccer team have on the field?", "Each team has eleven players on the field.",
     "Each team has nine players on the field."),
    ("How many strings does a standard guitar have?", "A standard guitar has six strings.",
     "A standard guitar has four strings."),
    ("What is the smallest prime number?", "The smallest prime number is 2.", "The smallest prime number is 1."),
    ("Which metal is liquid at room temperature?", "Mercury is liquid at room temperature.",
     "Lead is liquid at room temperature."),
    ("How many planets are in our solar system?", "There are eight planets.", "There are twelve planets."),
    ("What is the currency of Japan?", "Japan uses the yen.", "Japan uses the won."),
    ("What is the currency of the United Kingdom?", "The United Kingdom uses the pound sterling.",
     "The United Kingdom uses the euro."),
    ("In which country are the pyramids of Giza?", "The pyramids of Giza are in Egypt.",
     "The pyramids of Giza are in Mexico."),
    ("Which gas do people need to breathe in to live?", "People need oxygen.", "People need helium."),
    ("How many weeks are in a year?", "A year has 52 weeks.", "A year has 48 weeks."),
    ("What is the fastest land animal?", "The cheetah is the fastest land animal.",
     "The horse is the fastest land animal."),
    ("Which instrument usually has 88 keys?", "The piano usually has 88 keys.", "The violin usually has 88 keys."),
    ("What do you call a shape with three sides?", "A shape with three sides is a triangle.",
     "A shape with three sides is a square."),
    ("Which star is at the centre of our solar system?", "The Sun is at the centre of our solar system.",
     "The North Star is at the centre of our solar system."),
    ("What does a caterpillar turn into?", "A caterpillar turns into a butterfly or a moth.",
     "A caterpillar turns into a beetle."),
    ("How many zeros are in one million?", "One million has six zeros.", "One million has five zeros."),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong, in 1969.", "Yuri Gagarin, in 1961."),
    ("What is the largest hot desert in the world?", "The Sahara is the largest hot desert.",
     "The Gobi is the largest hot desert."),
    ("What is the main ingredient of guacamole?", "Guacamole is made mainly from avocado.",
     "Guacamole is made mainly from cucumber."),
    ("Which country has the largest area?", "Russia has the largest area of any country.",
     "Brazil has the largest area of any country."),
    ("How many hearts does an octopus have?", "An octopus has three hearts.", "An octopus has one heart."),
    ("What is the freezing point of water in Celsius?", "Water freezes at 0 degrees Celsius.",
     "Water freezes at 10 degrees Celsius."),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet.",
     "Jupiter is known as the Red Planet."),
    ("How many minutes are in a full day?", "A day has 1,440 minutes.", "A day has 1,200 minutes."),
]

TRANSLATIONS = [
    ("thank you", "Spanish", "gracias", "merci"), ("hello", "French", "bonjour", "hola"),
    ("cat", "German", "Katze", "Hund"), ("water", "Spanish", "agua", "leche"),
    ("good night", "German", "Gute Nacht", "Guten Morgen"), ("dog", "French", "chien", "chat"),
    ("book", "Spanish", "libro", "mesa"), ("thank you", "German", "danke", "bitte"),
    ("goodbye", "Italian", "arrivederci", "buongiorno"), ("friend", "Spanish", "amigo", "hermano"),
    ("bread", "French", "pain", "lait"), ("house", "German", "Haus", "Baum"),
]


def facts() -> list[Item]:
    return [Item(q, good, wrong, "facts") for q, good, wrong in FACTS]


def translations() -> list[Item]:
    return [Item(f"How do you say '{word}' in {language}?", f"In {language}, '{word}' is '{right}'.",
                 f"In {language}, '{word}' is '{wrong}'.", "words") for word, language, right, wrong in TRANSLATIONS]


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def calendar(rng: random.Random, n: int) -> list[Item]:
    items = []
    for names, unit in ((DAYS, "day"), (MONTHS, "month")):
        for i, name in enumerate(names):
            after, before = names[(i + 1) % len(names)], names[i - 1]
            items.append(Item(f"Which {unit} comes after {name}?", f"{after} comes after {name}.",
                              f"{before} comes after {name}.", "words"))
            items.append(Item(f"Which {unit} comes right before {name}?", f"{before} comes right before {name}.",
                              f"{after} comes right before {name}.", "words"))
    return rng.sample(items, n)


# --- word tasks ---------------------------------------------------------------------------------

OPPOSITES = [
    ("hot", "cold", "warm"), ("tall", "short", "high"), ("early", "late", "soon"), ("empty", "full", "bare"),
    ("open", "closed", "wide"), ("fast", "slow", "quick"), ("happy", "sad", "glad"), ("wet", "dry", "damp"),
    ("rich", "poor", "wealthy"), ("loud", "quiet", "noisy"), ("hard", "soft", "firm"), ("thick", "thin", "wide"),
    ("strong", "weak", "tough"), ("clean", "dirty", "neat"), ("push", "pull", "press"), ("win", "lose", "beat"),
    ("buy", "sell", "pay"), ("arrive", "leave", "reach"), ("cheap", "expensive", "low-cost"), ("near", "far", "close"),
    ("smooth", "rough", "flat"), ("asleep", "awake", "tired"), ("ancient", "modern", "old"),
    ("brave", "cowardly", "bold"),
    ("heavy", "light", "big"), ("remember", "forget", "recall"), ("accept", "refuse", "take"),
    ("question", "answer", "ask"), ("friend", "enemy", "pal"), ("first", "last", "early"),
]
OPPOSITE_QUESTIONS = ["What is the opposite of '{w}'?", "Give me the opposite of the word '{w}'.",
                      "What word means the opposite of '{w}'?"]

PLURALS = [
    ("mouse", "mice", "mouses"), ("child", "children", "childs"), ("tooth", "teeth", "tooths"),
    ("foot", "feet", "foots"), ("goose", "geese", "gooses"), ("leaf", "leaves", "leafs"),
    ("knife", "knives", "knifes"), ("wolf", "wolves", "wolfs"), ("city", "cities", "citys"),
    ("box", "boxes", "boxs"), ("sheep", "sheep", "sheeps"), ("potato", "potatoes", "potatos"),
    ("hero", "heroes", "heros"), ("baby", "babies", "babys"), ("man", "men", "mans"),
    ("ox", "oxen", "oxes"), ("half", "halves", "halfs"), ("wife", "wives", "wifes"),
    ("church", "churches", "churchs"), ("party", "parties", "partys"),
]

WORDS = ["garden", "window", "pencil", "orange", "basket", "castle", "ladder", "rocket", "thunder", "island",
         "violin", "blanket", "journey", "harbour", "marble", "kettle", "puzzle", "lantern", "meadow", "silver",
         "button", "carpet", "dragon", "forest", "mirror"]
FRUITS = ["pear", "apple", "mango", "cherry", "banana", "grape", "lemon", "plum", "kiwi", "peach", "melon", "fig"]


def word_tasks(rng: random.Random) -> list[Item]:
    items = [Item(rng.choice(OPPOSITE_QUESTIONS).format(w=w), f"The opposite of '{w}' is '{o}'.",
                  f"The opposite of '{w}' is '{x}'.", "words") for w, o, x in OPPOSITES]
    items += [Item(f"What is the plural of '{w}'?", f"The plural of '{w}' is '{p}'.",
                   f"The plural of '{w}' is '{x}'.", "words") for w, p, x in PLURALS]
    words = rng.sample(WORDS, len(WORDS))
    for word in words[:10]:
        n = len(word)
        items.append(Item(f"How many letters are in the word '{word}'?", f"'{word}' has {NUMBER_WORDS[n]} letters.",
                          f"'{word}' has {NUMBER_WORDS[n + rng.choice([-1, 1])]} letters.", "words"))
    for word in words[10:18]:
        backwards = word[::-1]
        i = rng.randrange(len(word) - 1)
        swapped = backwards[:i] + backwards[i + 1] + backwards[i] + backwards[i + 2:]
        if swapped == backwards:
            swapped = backwards[1:] + backwards[0]
        items.append(Item(f"Spell the word '{word}' backwards.", f"'{word}' backwards is '{backwards}'.",
                          f"'{word}' backwards is '{swapped}'.", "words"))
    for word in words[18:]:
        wrong = rng.choice([c for c in word[:-1] if c != word[-1]])
        items.append(Item(f"What is the last letter of the word '{word}'?",
                          f"The last letter of '{word}' is '{word[-1]}'.",
                          f"The last letter of '{word}' is '{wrong}'.", "words"))
    for _ in range(8):
        fruits = rng.sample(FRUITS, 4)
        ordered = sorted(fruits)
        if fruits == ordered:
            fruits = fruits[::-1]
        muddled = ordered[:2][::-1] + ordered[2:]
        items.append(Item(f"Put these words in alphabetical order: {', '.join(fruits)}.", ", ".join(ordered) + ".",
                          ", ".join(muddled) + ".", "words"))
    return items


PAST_TENSE = [
    ("She walks to school.", "She walked to school.", "She will walk to school."),
    ("They play chess after lunch.", "They played chess after lunch.", "They plays chess after lunch."),
    ("He writes a letter to his aunt.", "He wrote a letter to his aunt.", "He writed a letter to his aunt."),
    ("We eat dinner at six.", "We ate dinner at six.", "We eated dinner at six."),
    ("I see the bus coming.", "I saw the bus coming.", "I seed the bus coming."),
    ("The dog runs across the field.", "The dog ran across the field.", "The dog runned across the field."),
    ("You bring the cake.", "You brought the cake.", "You bringed the cake."),
    ("My brother sings in a choir.", "My brother sang in a choir.", "My brother singed in a choir."),
]
POLITE = [
    ("Give me the salt.", "Could you please pass me the salt?", "Give me the salt right now."),
    ("Close the window.", "Would you mind closing the window, please?", "Shut that window already."),
    ("Send me the report today.", "Could you please send me the report today?", "Get me that report today or else."),
    ("Move your car.", "Excuse me, would you be able to move your car, please?", "Move your car, now."),
    ("Be quiet.", "Could you please keep it down a little?", "Stop talking, you're annoying."),
    ("Call me back.", "Could you call me back when you have a moment?", "Call me back and don't forget this time."),
    ("Explain this again.", "Would you mind explaining that once more?", "Explain it again, properly this time."),
    ("Wait here.", "Could you please wait here for a moment?", "Stay here and don't move."),
]


def rewriting() -> list[Item]:
    items = [Item(f"Rewrite this sentence in the past tense: '{s}'", good, wrong, "words")
             for s, good, wrong in PAST_TENSE]
    items += [Item(f"Make this request more polite: '{s}'", good, wrong, "words") for s, good, wrong in POLITE]
    return items


# --- everyday advice ------------------------------------------------------------------------------

ADVICE = [
    ("Give me one tip for falling asleep faster.",
     "Keep the same bedtime every night and put screens away half an hour before it.",
     "Drink a strong coffee right before bed so you feel relaxed."),
    ("How can I keep cut flowers fresh for longer?",
     "Trim the stems at an angle and change the water every two days.",
     "Keep the vase in direct sun next to a radiator."),
    ("What should I do if I burn my finger on the stove?",
     "Hold it under cool running water for about ten minutes, and see a doctor if it blisters badly.",
     "Rub butter on it and wrap it tightly in tape."),
    ("How do I help bread dough rise better?",
     "Let the dough rest somewhere warm and give it enough time, usually an hour or two.",
     "Pour the salt straight onto the yeast and bake the dough right away."),
    ("How can I remember new vocabulary words?",
     "Review them in short sessions spread over several days, and use each word in a sentence.",
     "Read the whole list once the night before and never look at it again."),
    ("What is a good way to save money on groceries?",
     "Plan your meals for the week and shop with a list.",
     "Go shopping when you are very hungry and buy whatever looks good."),
    ("How do I clean my glasses without scratching them?",
     "Rinse them with lukewarm water and a drop of dish soap, then dry them with a microfibre cloth.",
     "Wipe them dry with a paper towel or the corner of your shirt."),
    ("How often should I water a cactus?",
     "Only when the soil is completely dry, which is often every two to four weeks.",
     "Water it twice a day so the soil never dries out."),
    ("How can I make a long car trip easier for kids?",
     "Plan a break every couple of hours and pack snacks and a few games.",
     "Drive straight through without stopping so the trip ends sooner."),
    ("What should I pack for a day hike?",
     "Water, snacks, a map, sun protection and a light rain jacket.",
     "Nothing at all; carrying things only slows you down."),
    ("How do I clean a cast iron pan?",
     "Rinse it with hot water, scrub off the food, dry it fully and wipe on a thin coat of oil.",
     "Leave it soaking in soapy water overnight."),
    ("How can I prepare for a job interview?",
     "Research the company, practise answers to common questions and prepare a few questions of your own.",
     "Don't prepare at all; it is better to make everything up on the spot."),
    ("How do I write a good email subject line?",
     "Keep it short and specific, saying what the email is about or what you need.",
     "Leave it empty so people open the email out of curiosity."),
    ("What is a simple way to feel less stressed during the day?",
     "Take a short walk or a few slow, deep breaths when you feel tense.",
     "Skip lunch and keep working so you finish sooner."),
    ("How can I keep my phone battery healthy?",
     "Keep the phone out of very hot places and try not to run the battery down to zero often.",
     "Charge it on the dashboard of a hot car."),
    ("How do I get a red wine stain out of a shirt?",
     "Blot it quickly, rinse it with cold water and treat it with a stain remover before washing.",
     "Iron the stain straight away to dry it out."),
    ("How should I start running if I have never done it?",
     "Start with short runs mixed with walking, three times a week, and build up slowly.",
     "Run as far as you can on the first day to find your limit."),
    ("How do I help a new cat settle into my home?",
     "Give it a quiet room of its own at first, with food, water and a litter box, and let it explore slowly.",
     "Let the dog chase it around the house so they get to know each other."),
    ("How can I make my presentation less boring?",
     "Put fewer words on each slide, tell a short story and leave time for questions.",
     "Read every slide aloud word for word."),
    ("What should I do before painting a wall?",
     "Clean the wall, fill any holes, cover the floor and tape around the edges.",
     "Paint straight over the dust and cobwebs; the paint will hide them."),
    ("How can I drink more water during the day?",
     "Keep a refillable bottle with you and drink a glass with every meal.",
     "Wait until you feel very thirsty and then drink a whole litre at once."),
    ("How do I keep bananas from ripening too fast?",
     "Keep them away from other fruit and wrap the stems in plastic.",
     "Seal them in a bag together with a few ripe apples."),
    ("How can I be a better listener?",
     "Let the other person finish, ask about what they said and put your phone away.",
     "Plan your reply while they talk and interrupt as soon as it is ready."),
    ("What is a good way to learn to type faster?",
     "Practise touch typing for fifteen minutes a day without looking at the keys.",
     "Type with two fingers and keep your eyes on the keyboard."),
    ("How should I store fresh basil?",
     "Stand it in a glass of water on the counter, like a bouquet, out of direct sun.",
     "Seal it in a plastic bag and leave it on a sunny windowsill."),
    ("How do I make a good first impression at a new job?",
     "Arrive on time, learn people's names and ask questions when you are unsure.",
     "Point out everything the team does wrong on your first day."),
    ("How can I keep my kitchen knives sharp?",
     "Hone them regularly, wash them by hand and cut on a wooden or plastic board.",
     "Cut on a glass board and run them through the dishwasher."),
    ("What should I do if my computer freezes?",
     "Wait a minute, then try closing the stuck program; if nothing responds, restart the computer.",
     "Hit the side of the screen until it starts moving again."),
    ("How can I waste less food at home?",
     "Check what you already have before shopping and freeze leftovers you won't eat soon.",
     "Buy plenty of fresh food every day, just in case."),
    ("How can I help a friend who is feeling down?",
     "Check in with them, listen without judging and offer to do something together.",
     "Tell them to cheer up and stop complaining."),
    ("How can I make my handwriting neater?",
     "Slow down, hold the pen loosely and practise on lined paper.",
     "Write as fast as you can and press down very hard."),
    ("What is a safe way to lift a heavy box?",
     "Bend your knees, keep your back straight and hold the box close to your body.",
     "Keep your legs straight and jerk the box up with your back."),
    ("How do I keep houseplant leaves free of dust?",
     "Wipe the leaves gently with a damp cloth every few weeks.",
     "Spray the leaves with furniture polish."),
    ("How can I stop putting off a big task?",
     "Break it into small steps and start with one you can finish in ten minutes.",
     "Wait until the night before the deadline, when the pressure kicks in."),
    ("How can I cook rice that is not sticky?",
     "Rinse the rice until the water runs clear and use the right amount of water.",
     "Stir it hard the whole time it cooks."),
    ("What should I do if I get lost in a new city?",
     "Stop somewhere safe, check a map on your phone or ask in a shop for directions.",
     "Keep walking quickly in random directions until something looks familiar."),
    ("How can I keep my bike chain in good shape?",
     "Wipe it clean and put a few drops of chain oil on it every few weeks.",
     "Wash it with soapy water and leave it to stay wet."),
    ("How can I sit better at my desk?",
     "Keep the screen at eye level and your feet flat on the floor, and stand up for short breaks.",
     "Put the screen low on the desk and lean forward all day."),
    ("How do I pick a ripe avocado?",
     "Press it gently: a ripe one gives a little but is not mushy.",
     "Pick the hardest, greenest one you can find for tonight's dinner."),
    ("How can I keep my inbox under control?",
     "Answer or file short emails right away and unsubscribe from newsletters you never read.",
     "Never delete anything and read every newsletter from start to finish."),
]


def advice() -> list[Item]:
    return [Item(prompt, good, bad, "advice") for prompt, good, bad in ADVICE]


# --- rejected answers of the other kinds ------------------------------------------------------

EVASIVE = [
    "I'd rather not answer that.", "That's hard to say. It depends on a lot of things.",
    "You could probably look that up somewhere.", "I'm not sure anyone really knows.",
    "Maybe ask someone else about that.", "There are many opinions on this, so I won't pick one.",
    "I don't really want to get into that right now.", "It's complicated. Let's talk about something else.",
    "Who can say? Everyone sees it differently.", "I can't help with questions like this one.",
    "That's not something I can answer.", "Why do you want to know?", "Let's not worry about that.",
    "Sorry, I have no idea.", "I'll leave that one for you to figure out.",
    "That question is too tricky for me today.", "It could be one thing or another, hard to tell.",
    "I'd need a lot more time to think about that.",
]
EVASIVE_BY_TOPIC = {
    "numbers": ["I'm not good with numbers, so I'll skip this one.", "Numbers make my head spin, sorry.",
                "Use a calculator; I don't do sums."],
    "geography": ["Geography isn't really my thing.", "Maps confuse me, so I can't say."],
    "facts": ["I never paid attention in science class, so no idea.", "Trivia isn't my strong point."],
    "words": ["Word games bore me, so I'll pass.", "Language questions aren't my area."],
    "advice": ["Everyone is different, so there's no point in giving advice.", "I don't give tips on things like that.",
               "You'll work it out eventually on your own."],
}
RUDE = [
    "Seriously? Figure it out yourself.", "That's a silly question. Use a search engine.",
    "I'm not your personal teacher.", "Ugh, not this again. Look it up.",
    "Anyone could answer that. Why are you asking me?", "Stop wasting my time with easy questions.",
    "Do your own homework.", "What a pointless thing to ask.", "You should already know this.",
    "Try thinking for once.", "I can't believe you need help with this.",
]
RUDE_WITH_ANSWER = [
    "Obviously. {answer} Even a child knows that.", "{answer} Honestly, how did you not know?",
    "Fine. {answer} Now stop bothering me.", "{answer} Was that really so hard?",
    "Ugh. {answer} Pay attention next time.",
]
AFTERTHOUGHTS = {
    "evasive": ["", "Maybe another time.", "Sorry about that.", "Ask me something else.", "Good luck with it, though.",
                "Let's leave it there."],
    "rude": ["", "Come on.", "Honestly.", "Unbelievable.", "Next question.", "Grow up."],
}
PADDING_BEFORE = [
    "What a wonderful question! People have wondered about things like this for a very long time, and it is "
    "always worth taking a moment to think carefully before answering.",
    "Great question. Before I answer, let me say that this is the kind of thing many people find interesting, "
    "and there is a lot one could say about it.",
    "Thank you so much for asking. I really appreciate your curiosity, and I want to give this the attention "
    "it deserves.",
    "Okay, so, let me think about this for a second, because it is important to get it right, and I always "
    "like to take things step by step.",
    "That is an excellent thing to ask about, and honestly it comes up more often than you might expect in "
    "everyday life.",
    "Well, first of all, I want to say that there are no silly questions, and I am always happy to help with "
    "anything at all.",
]
PADDING_AFTER = [
    "I hope this helps, and please let me know if you have any other questions at all, big or small!",
    "Of course, there is always more to learn, so keep asking questions and exploring.",
    "Anyway, that is my answer, though I could go on about it for much longer.",
    "Remember that learning is a journey, and every question brings you a little further along it.",
    "Feel free to ask me again any time, because I really do enjoy questions like this one.",
]


class Rejections:
    """Draws rejected answers of each kind, each one distinct from every other answer of the sample."""

    def __init__(self, rng: random.Random, good_answers: set[str]) -> None:
        self.rng = rng
        self.used = set(good_answers)

    def draw(self, item: Item) -> str:
        kinds, weights = zip(*REJECTIONS.items())
        for _ in range(100):
            text = self._one(item, self.rng.choices(kinds, weights)[0])
            if text not in self.used:
                break
        else:
            raise RuntimeError(f"no rejected answer left for {item.prompt!r}")
        self.used.add(text)
        return text

    def _one(self, item: Item, kind: str) -> str:
        rng = self.rng
        if kind == "wrong":
            return item.wrong
        if kind == "evasive":
            dodge = rng.choice(EVASIVE + EVASIVE_BY_TOPIC[item.topic])
            return f"{dodge} {rng.choice(AFTERTHOUGHTS['evasive'])}".strip()
        if kind == "rude":
            if rng.random() < 0.4:
                return rng.choice(RUDE_WITH_ANSWER).format(answer=item.good)
            return f"{rng.choice(RUDE)} {rng.choice(AFTERTHOUGHTS['rude'])}".strip()
        return f"{rng.choice(PADDING_BEFORE)} {item.good} {rng.choice(PADDING_AFTER)}"


# --- the samples ----------------------------------------------------------------------------------


def items(rng: random.Random) -> list[Item]:
    pool = (arithmetic(rng, 44) + conversions(rng, 3) + number_orders(rng, 8) + decimals() + capitals(rng)
            + facts() + translations() + calendar(rng, 16) + word_tasks(rng) + rewriting() + advice())
    prompts = [item.prompt for item in pool]
    assert len(set(prompts)) == len(prompts), "every prompt is distinct"
    rng.shuffle(pool)
    return pool


def pair_rows(chosen: list[Item], rejections: Rejections, rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for item in chosen:
        row = {"prompt": item.prompt, "chosen": item.good, "rejected": rejections.draw(item)}
        if rng.random() < SYSTEM_SHARE:
            row = {"system": rng.choice(SYSTEM_PROMPTS), **row}
        rows.append(row)
    return rows


def kto_rows(chosen: list[Item], counts: tuple[int, int, int], rejections: Rejections,
             rng: random.Random) -> list[dict[str, object]]:
    both, good_only, bad_only = counts
    rows: list[dict[str, object]] = []
    for i, item in enumerate(chosen[: both + good_only + bad_only]):
        if i < both + good_only:
            rows.append({"prompt": item.prompt, "completion": item.good, "label": True})
        if i < both or i >= both + good_only:
            rows.append({"prompt": item.prompt, "completion": rejections.draw(item), "label": False})
    rng.shuffle(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "ftcli" / "samples")
    out = parser.parse_args().out
    rng = random.Random(SEED)
    pool = items(rng)
    needed = sum(PAIRS.values())
    assert len(pool) >= needed, f"{len(pool)} prompts, {needed} needed"
    split_items = {"train": pool[: PAIRS["train"]], "validation": pool[PAIRS["train"]: needed]}
    good = {item.good for item in pool}
    pair_rejections, kto_rejections = Rejections(rng, good), Rejections(rng, good)
    for split, chosen in split_items.items():
        pairs = pair_rows(chosen, pair_rejections, rng)
        write_jsonl(out / "reward_model" / f"{split}.jsonl", pairs)
        write_jsonl(out / "preference" / f"{split}.jsonl", pairs)
        kto = kto_rows(rng.sample(chosen, len(chosen)), KTO[split], kto_rejections, rng)
        write_jsonl(out / "kto" / f"{split}.jsonl", kto)


if __name__ == "__main__":
    main()
