#!/usr/bin/env python3
"""Writes tests/redaction/labelled.jsonl: the labelled set that measures redaction (issue 15).

Each line is one utterance as a recogniser might write it, in Russian or English, with the
personal data in it marked by kind and exact text:
  {"lang": "ru", "form": "spoken", "text": "...", "spans": [{"kind": "phone", "text": "..."}]}
Numbers are random but valid (check digits computed as the documents define them); the
look-alikes (prices, dates, order numbers, quantities) have no spans and must stay.
Deterministic (fixed seed): run it again and the file is the same.
"""
import json
import random
import sys
from pathlib import Path

R = random.Random(20261206)

RU_UNITS = "ноль один два три четыре пять шесть семь восемь девять".split()
RU_TEENS = ("десять одиннадцать двенадцать тринадцать четырнадцать пятнадцать шестнадцать "
            "семнадцать восемнадцать девятнадцать").split()
RU_TENS = ["", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
           "восемьдесят", "девяносто"]
RU_HUNDREDS = ["", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
               "восемьсот", "девятьсот"]
EN_UNITS = "zero one two three four five six seven eight nine".split()
EN_TEENS = ("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen "
            "nineteen").split()
EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def ru_group(g: str) -> str:
    """A digit group as a Russian speaker dictates it: '916' -> 'девятьсот шестнадцать',
    '07' -> 'ноль семь'."""
    if g.startswith("0") or len(g) == 1:
        return " ".join(RU_UNITS[int(c)] for c in g)
    v = int(g)
    words = []
    if len(g) == 3:
        words.append(RU_HUNDREDS[v // 100])
        v %= 100
        if v == 0:
            return words[0]
        if v < 10:
            words.append(RU_UNITS[v])
            return " ".join(words)
    if 10 <= v < 20:
        words.append(RU_TEENS[v - 10])
    else:
        words.append(RU_TENS[v // 10])
        if v % 10:
            words.append(RU_UNITS[v % 10])
    return " ".join(words)


def en_digits(d: str, doubles=False) -> str:
    out, i = [], 0
    while i < len(d):
        if doubles and i + 1 < len(d) and d[i] == d[i + 1] and (i + 2 >= len(d) or d[i + 2] != d[i]):
            out.append("double " + EN_UNITS[int(d[i])])
            i += 2
            continue
        out.append("oh" if d[i] == "0" and doubles else EN_UNITS[int(d[i])])
        i += 1
    return " ".join(out)


def ru_spoken(groups):
    return " ".join(ru_group(g) for g in groups)


def rand_digits(n, first=None):
    s = "".join(str(R.randrange(10)) for _ in range(n))
    return (first + s[len(first):]) if first else s


def luhn_complete(body):
    total = 0
    for i, c in enumerate(reversed(body)):
        x = int(c)
        if i % 2 == 0:
            x *= 2
            if x > 9:
                x -= 9
        total += x
    return body + str((10 - total % 10) % 10)


def card():
    prefix = R.choice(["4", "51", "52", "55", "2200", "2202", "37"])
    n = 15 if prefix == "37" else 16
    return luhn_complete(prefix + rand_digits(n - 1 - len(prefix)))


def inn10():
    d = [int(c) for c in rand_digits(9, "77")]
    w = [2, 4, 10, 3, 5, 9, 4, 6, 8]
    return "".join(map(str, d)) + str(sum(a * b for a, b in zip(d, w)) % 11 % 10)


def inn12():
    d = [int(c) for c in rand_digits(10, "50")]
    w11 = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
    d.append(sum(a * b for a, b in zip(d, w11)) % 11 % 10)
    w12 = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
    d.append(sum(a * b for a, b in zip(d, w12)) % 11 % 10)
    return "".join(map(str, d))


def snils():
    while True:
        d = rand_digits(9)
        s = sum(int(c) * (9 - i) for i, c in enumerate(d))
        check = s if s < 100 else 0 if s in (100, 101) else (s % 101 if s % 101 != 100 else 0)
        return d + f"{check:02d}"


def ogrn():
    body = R.choice(["1", "5"]) + rand_digits(11, "0" + str(R.randrange(10)))
    return body + str(int(body) % 11 % 10)


def ogrnip():
    body = "3" + rand_digits(13)
    return body + str(int(body) % 13 % 10)


def ru_phone():
    return "9" + rand_digits(9)


FIRST_RU = ["иван", "мария", "олег", "анна", "сергей", "елена", "дмитрий", "ольга"]
LAST_RU = ["петров", "смирнова", "кузнецов", "попова", "соколов", "волкова"]
FIRST_EN = ["john", "mary", "peter", "linda", "james", "susan", "david", "karen"]
LAST_EN = ["smith", "jones", "brown", "taylor", "wilson", "clark"]
DOM_RU = [("мейл", "ру"), ("яндекс", "ру"), ("гмейл", "ком"), ("инбокс", "ру"), ("бк", "ру")]
DOM_EN = [("example", "com"), ("gmail", "com"), ("acme", "io"), ("outlook", "com"), ("contoso", "net")]
DOM_W = ["mail.ru", "yandex.ru", "gmail.com", "example.com", "company.org", "acme.io"]

items = []


def add(lang, form, template, spans):
    """template holds {0}, {1}...; spans is a list of (kind, text)."""
    text = template.format(*[t for _, t in spans])
    items.append({"lang": lang, "form": form, "text": text,
                  "spans": [{"kind": k, "text": t} for k, t in spans]})


def ph_written_ru(d):
    return R.choice([
        f"+7 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8{d}",
        f"+7{d}",
        f"8-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
    ])


def ph_spoken_ru(d):
    lead = R.choice(["восемь", "плюс семь"])
    return f"{lead} {ru_spoken([d[:3], d[3:6], d[6:8], d[8:]])}"


# --- phones
for _ in range(30):
    d = ru_phone()
    t = R.choice(["Запишите мой телефон {0}, я буду ждать звонка.", "Можно позвонить по номеру {0}",
                  "Мобильный у меня {0}.", "Перезвоните мне на {0} после обеда.",
                  "Да, {0} — это мой рабочий.", "Вот номер: {0}"])
    add("ru", "written", t, [("phone", ph_written_ru(d))])
for _ in range(30):
    d = ru_phone()
    t = R.choice(["Запишите телефон {0} спасибо", "мой номер {0}", "перезвоните на {0} пожалуйста",
                  "звоните {0} в любое время", "ватсап {0}"])
    add("ru", "spoken", t, [("phone", ph_spoken_ru(d))])
for _ in range(22):
    a, b, c = str(R.randrange(201, 989)), str(R.randrange(200, 999)), rand_digits(4)
    w = R.choice([f"+1 {a} {b} {c}", f"+1 ({a}) {b}-{c}", f"+1-{a}-{b}-{c}",
                  f"+44 20 {rand_digits(4)} {rand_digits(4)}", f"+49 30 {rand_digits(8)}"])
    t = R.choice(["You can reach me at {0} any time.", "My cell is {0}.", "Call me on {0} tomorrow.",
                  "The best number is {0}", "Text me at {0}, please."])
    add("en", "written", t, [("phone", w)])
for _ in range(22):
    a, b, c = str(R.randrange(201, 989)), str(R.randrange(200, 999)), rand_digits(4)
    t = R.choice(["my phone number is {0}", "call me back at {0}", "you can reach me on {0}",
                  "my mobile is {0} okay"])
    spoken = R.choice([f"{en_digits(a)} {en_digits(b)} {en_digits(c)}",
                       f"plus one {en_digits(a, True)} {en_digits(b, True)} {en_digits(c, True)}"])
    add("en", "spoken", t, [("phone", spoken)])

# --- cards
for _ in range(25):
    n = card()
    w = R.choice([" ".join(n[i:i + 4] for i in range(0, len(n), 4)),
                  "-".join(n[i:i + 4] for i in range(0, len(n), 4)), n])
    t = R.choice(["Номер карты {0}, срок действия до декабря.", "Оплачу картой {0}.",
                  "Спишите с карты {0}", "Вот моя карта: {0}", "Да, {0}, это виза."])
    add("ru", "written", t, [("card", w)])
for _ in range(20):
    n = card()
    groups = [n[i:i + 4] for i in range(0, len(n), 4)]
    spoken = R.choice([
        " ".join(ru_spoken([g[:2], g[2:]]) for g in groups),
        " ".join(" ".join(RU_UNITS[int(c)] for c in g) for g in groups),
    ])
    t = R.choice(["номер карты {0}", "карта {0} срок до двадцать седьмого года",
                  "записывайте карту {0}"])
    add("ru", "spoken", t, [("card", spoken)])
for _ in range(22):
    n = card()
    w = R.choice([" ".join(n[i:i + 4] for i in range(0, len(n), 4)), n,
                  "-".join(n[i:i + 4] for i in range(0, len(n), 4))])
    t = R.choice(["My card number is {0}, expiring next year.", "Charge it to {0}.",
                  "The Visa is {0}", "Use the card {0} for the invoice."])
    add("en", "written", t, [("card", w)])
for _ in range(20):
    n = card()
    groups = [n[i:i + 4] for i in range(0, len(n), 4)]
    spoken = ", ".join(en_digits(g) for g in groups)
    t = R.choice(["the card number is {0}", "my card is {0} thanks", "card {0}"])
    add("en", "spoken", t, [("card", spoken)])

# --- e-mails
for _ in range(18):
    f, l = R.choice(FIRST_EN), R.choice(LAST_EN)
    w = R.choice([f"{f}.{l}@{R.choice(DOM_W)}", f"{f}_{l}{R.randrange(10, 99)}@{R.choice(DOM_W)}",
                  f"{f[0]}{l}@{R.choice(DOM_W)}"])
    lang = R.choice(["ru", "en"])
    t = R.choice(["Пишите на {0}, я отвечу.", "Почта {0}."] if lang == "ru"
                 else ["Send it to {0}, please.", "My email is {0}."])
    add(lang, "written", t, [("email", w)])
for _ in range(18):
    f, l = R.choice(FIRST_RU), R.choice(LAST_RU)
    dom, tld = R.choice(DOM_RU)
    spoken = R.choice([f"{f} собака {dom} точка {tld}", f"{f} точка {l} собака {dom} точка {tld}",
                       f"{l} собака {dom} точка {tld}"])
    t = R.choice(["почта {0} записали", "пишите на {0}", "мой адрес {0} спасибо"])
    add("ru", "spoken", t, [("email", spoken)])
for _ in range(18):
    f, l = R.choice(FIRST_EN), R.choice(LAST_EN)
    dom, tld = R.choice(DOM_EN)
    spoken = R.choice([f"{f} at {dom} dot {tld}", f"{f} dot {l} at {dom} dot {tld}",
                       f"{f} underscore {l} at {dom} dot {tld}"])
    t = R.choice(["my email is {0}", "send the proposal to {0} please", "it's {0}"])
    add("en", "spoken", t, [("email", spoken)])

# --- passports
for _ in range(14):
    s, n = rand_digits(4), rand_digits(6)
    w = R.choice([f"{s} {n}", f"{s[:2]} {s[2:]} {n}", f"{s}{n}"])
    t = R.choice(["Паспорт {0}, выдан в 2015 году.", "Серия и номер паспорта: {0}",
                  "Паспортные данные {0}"])
    add("ru", "written", t, [("passport", w)])
for _ in range(6):
    s, n = rand_digits(4), rand_digits(6)
    add("ru", "written", "Серия {0}", [("passport", f"{s} номер {n}")])
for _ in range(14):
    s, n = rand_digits(4), rand_digits(6)
    spoken = R.choice([f"{ru_spoken([s[:2], s[2:]])} номер {ru_spoken([n[:3], n[3:]])}",
                       f"{ru_spoken([s[:2], s[2:]])} {ru_spoken([n[:3], n[3:]])}"])
    t = R.choice(["паспорт серия {0}", "данные паспорта {0}"])
    add("ru", "spoken", t, [("passport", spoken)])
for _ in range(8):
    s, n = rand_digits(4), rand_digits(6)
    add("en", "written", R.choice(["My passport number is {0}.", "Passport {0}, Russian."]),
        [("passport", f"{s} {n}")])

# --- ИНН
for _ in range(16):
    v = R.choice([inn10(), inn12()])
    t = R.choice(["ИНН {0}", "Наш ИНН {0}, КПП пришлю письмом.", "ИНН организации: {0}.",
                  "Укажите в счёте ИНН {0}"])
    add("ru", "written", t, [("inn", v)])
for _ in range(12):
    v = inn10()
    spoken = ru_spoken([v[:2], v[2:4], v[4:6], v[6:8], v[8:]])
    add("ru", "spoken", R.choice(["инн {0}", "наш инн {0} записали"]), [("inn", spoken)])
for _ in range(8):
    v = inn10()
    add("en", "written", R.choice(["Our tax ID is {0}.", "The taxpayer number is {0}"]),
        [("inn", v)])
for _ in range(6):
    v = inn10()
    add("ru", "written", "Реквизиты: {0}, банк Открытие.", [("inn", v)])

# --- СНИЛС
for _ in range(14):
    v = snils()
    w = R.choice([f"{v[:3]}-{v[3:6]}-{v[6:9]} {v[9:]}", v, f"{v[:3]} {v[3:6]} {v[6:9]} {v[9:]}"])
    t = R.choice(["СНИЛС {0}", "Мой СНИЛС {0}, проверьте.", "Номер СНИЛС: {0}"])
    add("ru", "written", t, [("snils", w)])
for _ in range(10):
    v = snils()
    spoken = ru_spoken([v[:3], v[3:6], v[6:9], v[9:]])
    add("ru", "spoken", "снилс {0}", [("snils", spoken)])

# --- ОГРН
for _ in range(14):
    v = R.choice([ogrn(), ogrnip()])
    t = R.choice(["ОГРН {0}", "ОГРН нашей компании {0}.", "ОГРНИП {0}"])
    add("ru", "written", t, [("ogrn", v)])
for _ in range(8):
    v = ogrn()
    spoken = ru_spoken([v[:1], v[1:3], v[3:5], v[5:7], v[7:9], v[9:11], v[11:]])
    add("ru", "spoken", "огрн {0}", [("ogrn", spoken)])

# --- two in one utterance
for _ in range(10):
    d, f = ru_phone(), R.choice(FIRST_EN)
    add("ru", "written", "Телефон {0}, почта {1}.",
        [("phone", ph_written_ru(d)), ("email", f"{f}@{R.choice(DOM_W)}")])

# --- look-alikes that must stay
looks_ru = [
    "Стоимость {n} рублей в месяц.", "Итого {n} рублей с НДС.", "Номер заказа {o}.",
    "Заказ {o} уже отгружен.", "Трек-номер {o}, посылка в пути.", "Счёт {o} оплачен вчера.",
    "Нам нужно {q} лицензий.", "Договор номер {o} от 25.03.2024.", "Встреча 12.04.2025 в 10:30.",
    "Бюджет {n} рублей на квартал.", "Артикул {o}, модель X-200.", "Скидка 15% до конца месяца.",
    "сто двадцать тысяч рублей за год", "двадцать пятого марта в десять тридцать",
    "заявка номер {o} закрыта", "итого {n} рублей", "на {q} пользователей",
    "цена девятьсот девяносто девять рублей", "в 2024 году было 350 сделок",
    "примерно три миллиона рублей в год",
]
looks_en = [
    "The price is ${n} per month.", "Order {o} shipped yesterday.", "Invoice {o} is overdue.",
    "We need {q} seats.", "The contract {o} was signed on 03/25/2024.",
    "Tracking number {o}.", "It costs {n} dollars a year.", "Ticket {o} is resolved.",
    "Our budget is ${n}.", "Version 2.4.1 ships on 2025-04-12.", "Reference {o} in the subject.",
    "about two hundred thousand dollars", "twenty five users for twelve months",
    "order number {o}", "we closed 350 deals in 2024", "the total is {n} dollars",
]
for template in looks_ru * 5:
    add("ru", "look-alike", template.format(n=f"{R.randrange(1, 999)} {R.randrange(100, 999)}",
                                            o=rand_digits(R.choice([8, 9, 10, 11, 12, 16])),
                                            q=R.randrange(2, 500)), [])
for template in looks_en * 5:
    add("en", "look-alike", template.format(n=f"{R.randrange(1, 999)},{R.randrange(100, 999)}",
                                            o=rand_digits(R.choice([8, 9, 10, 11, 12, 16])),
                                            q=R.randrange(2, 500)), [])
# A valid card number named as an order number stays: the speaker said what it is.
for _ in range(5):
    add("en", "look-alike", "Order {0} is ready.".replace("{0}", card()), [])

# --- written by hand, not from the templates above: other word orders, mixed digits and words,
# punctuation the recogniser adds, and look-alikes named in other ways.
HAND = [
    ("ru", "тел. 8(916)1234567, спросите Ольгу", [("phone", "8(916)1234567,")]),
    ("ru", "записывайте: +7-903-555-12-34.", [("phone", "+7-903-555-12-34.")]),
    ("ru", "восемь 916 сто двадцать три 45 67 это мой", [("phone", "восемь 916 сто двадцать три 45 67")]),
    ("ru", "Да, плюс семь девятьсот три пятьсот пятьдесят пять двенадцать тридцать четыре.",
     [("phone", "плюс семь девятьсот три пятьсот пятьдесят пять двенадцать тридцать четыре.")]),
    ("ru", "можно на домашний 8 495 123 45 67 или на рабочий", [("phone", "8 495 123 45 67")]),
    ("ru", "Мой номер 89031234567", [("phone", "89031234567")]),
    ("ru", "номер телефона заказчика 8 916 765 43 21, звоните после трёх", [("phone", "8 916 765 43 21,")]),
    ("ru", "телефон клиента +7 926 111 22 33", [("phone", "+7 926 111 22 33")]),
    ("en", "the caller's number was 415 555 0199 and he hung up", [("phone", "415 555 0199")]),
    ("ru", "Напишите в телеграм, номер +79261234567.", [("phone", "+79261234567.")]),
    ("ru", "почта Ivan.Petrov@Mail.Ru, это личная", [("email", "Ivan.Petrov@Mail.Ru,")]),
    ("ru", "пишите на ivan-petrov@yandex.ru.", [("email", "ivan-petrov@yandex.ru.")]),
    ("ru", "иван собака mail.ru", [("email", "иван собака mail.ru")]),
    ("ru", "адрес петров точка иван собака гмейл точка ком, записали?",
     [("email", "петров точка иван собака гмейл точка ком,")]),
    ("en", "drop me a line at jsmith at gmail.com", [("email", "jsmith at gmail.com")]),
    ("en", "My address is Linda.Clark@Contoso.com.", [("email", "Linda.Clark@Contoso.com.")]),
    ("en", "it's peter underscore jones at outlook dot com okay", [("email", "peter underscore jones at outlook dot com")]),
    ("ru", "Карта 2200 7001 2345 6781, держатель Иванов.", [("card", "2200 7001 2345 6781,")]),
    ("ru", "номер карты сорок один одиннадцать одиннадцать одиннадцать одиннадцать одиннадцать одиннадцать одиннадцать",
     [("card", "сорок один одиннадцать одиннадцать одиннадцать одиннадцать одиннадцать одиннадцать одиннадцать")]),
    ("en", "Visa, 4111-1111-1111-1111, expires 09/27.", [("card", "4111-1111-1111-1111,")]),
    ("en", "card number four one one one one one one one one one one one one one one one",
     [("card", "four one one one one one one one one one one one one one one one")]),
    ("en", "Amex 378282246310005 please", [("card", "378282246310005")]),
    ("ru", "паспорт 45 08, номер 123456, выдан ОВД", [("passport", "45 08, номер 123456,")]),
    ("ru", "Паспорт: серия 4510 № 654321.", [("passport", "4510 № 654321.")]),
    ("ru", "ИНН компании — 7707083893.", [("inn", "7707083893.")]),
    ("ru", "Мой ИНН 500100732259, я ИП.", [("inn", "500100732259,")]),
    ("ru", "снилс 112 233 445 95 проверьте", [("snils", "112 233 445 95")]),
    ("ru", "ОГРНИП 304500116000157.", [("ogrn", "304500116000157.")]),
    ("ru", "огрн один ноль два семь семь ноль ноль один три два один девять пять",
     [("ogrn", "один ноль два семь семь ноль ноль один три два один девять пять")]),
]
for lang, text, spans in HAND:
    assert all(t in text for _, t in spans), text
    items.append({"lang": lang, "form": "hand", "text": text,
                  "spans": [{"kind": k, "text": t} for k, t in spans]})
HAND_LOOKS = [
    ("ru", "БИК 044525225, КПП 773601001, расчётный счёт 40702810938000012345."),
    ("ru", "Индекс 119021, Москва, улица Льва Толстого, дом 16."),
    ("ru", "Номер обращения 1234567812345670, мы перезвоним."),
    ("ru", "Поставка 1 250 000 рублей, оплата до 25.03.2025."),
    ("ru", "Тариф на 12 месяцев, 25 пользователей, итого 450000."),
    ("ru", "В 2024 году у нас было 1350 клиентов и 89 менеджеров."),
    ("ru", "Версия 3.14.159, сборка 20240325."),
    ("ru", "двести пятьдесят тысяч в месяц это много"),
    ("ru", "перезвоню в пятнадцать тридцать"),
    ("ru", "у нас сто двадцать три сотрудника и сорок пять филиалов"),
    ("en", "We have 1,350 customers and 89 reps across 12 offices."),
    ("en", "The quote is 45000 for 150 seats, valid until 2025-03-25."),
    ("en", "Your case number is 8675309123, we'll be in touch."),
    ("en", "Model X200, serial 5551234567890."),
    ("en", "We grew forty five percent in twenty twenty four."),
    ("en", "Let's meet at ten thirty at the office on fifth avenue."),
    ("en", "Look at the example dot com page for the pricing."),
    ("en", "The invoice total was 12,499.99 dollars."),
]
for lang, text in HAND_LOOKS:
    items.append({"lang": lang, "form": "look-alike", "text": text, "spans": []})

out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/redaction/labelled.jsonl")
with out.open("w", encoding="utf-8") as f:
    for item in items:
        f.write(json.dumps(item, ensure_ascii=False) + "\n")
spans = sum(len(i["spans"]) for i in items)
print(f"{out}: {len(items)} utterances, {spans} spans, "
      f"{sum(1 for i in items if not i['spans'])} look-alikes")
