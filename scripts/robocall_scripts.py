"""Robocall-style text templates for synthesising robot (TTS) speech.

Used by ``scripts/build_corpus.py``. Templates contain ``{placeholders}`` that
:func:`render_en` / :func:`render_zh` fill with random names, amounts, dates,
phone digits etc., so that every synthesised clip gets a slightly different
text.  All randomness comes from the ``random.Random`` passed in, so the texts
are deterministic for a given seed.
"""

from __future__ import annotations

import random
import re

# --------------------------------------------------------------------------- English

EN_TEMPLATES: dict[str, list[str]] = {
    "warranty": [
        "This is an important message regarding your vehicle's extended warranty.",
        "Our records show that the factory warranty on your {car} is about to expire.",
        "This is your final courtesy call before we close the warranty file on your {car}.",
        "Press one now to speak with a warranty specialist about your coverage options.",
        "Your {car} may no longer be covered for repairs after {date}.",
        "We have been trying to reach you concerning your car's extended warranty.",
    ],
    "loans": [
        "Congratulations, you have been pre-approved for a personal loan of up to {amount}.",
        "Because of your good payment history you qualify for a lower interest rate of {percent} percent.",
        "This offer to consolidate your credit card debt expires on {date}.",
        "Hi {first}, this is {agent} from {lender}, calling about your loan application.",
        "You can reduce your monthly payments by as much as {amount} starting this month.",
        "To claim your approved funds, please call us back at {phone}.",
        "There is no credit check required and the money can be in your account by {weekday}.",
    ],
    "bank_fraud": [
        "This is an automated security alert from {bank}.",
        "We detected a suspicious charge of {amount} on your card ending in {last4}.",
        "If you did not authorize this transaction, press one to speak to our fraud department.",
        "Your online banking access has been temporarily suspended for your protection.",
        "To verify your identity, please enter the last four digits of your social security number.",
        "A purchase at {store} for {amount} was attempted on {date}.",
        "Please call {bank} immediately at {phone} to keep your account active.",
    ],
    "insurance": [
        "Hello {first}, you may be eligible for a lower health insurance premium this year.",
        "Open enrollment ends on {date}, so do not miss your chance to save.",
        "Families in {city} are saving up to {amount} a year on their home insurance.",
        "Press two to be connected with a licensed insurance agent in your area.",
        "Your current policy number {case_no} is due for renewal.",
        "Medicare beneficiaries may qualify for additional benefits at no extra cost.",
    ],
    "delivery": [
        "We attempted to deliver your package today but nobody was available to sign for it.",
        "Your parcel with tracking number {case_no} is being held at our depot.",
        "A redelivery fee of {small_amount} is required before {date}.",
        "Please confirm your address by pressing one, or call {phone}.",
        "Your order from {store} has been delayed due to an incorrect postal code.",
        "This is {courier} with an update about your shipment.",
    ],
    "tax": [
        "This is a final notice from the tax office regarding unpaid taxes of {amount}.",
        "A lawsuit has been filed under your name with case number {case_no}.",
        "Failure to respond before {date} may result in a warrant for your arrest.",
        "To settle this matter immediately, please call our hotline at {phone}.",
        "You are entitled to a tax refund of {amount}, but we need to verify your details.",
        "Officer {last} has been assigned to your file.",
    ],
    "education": [
        "Are you looking to finish your degree online in as little as {months} months?",
        "Enrollment for our accredited {course} program closes on {date}.",
        "Students in {city} may qualify for grants of up to {amount}.",
        "Press one to speak to an admissions advisor about flexible evening classes.",
        "This is a reminder about the student loan forgiveness program.",
        "Your free information pack about our {course} course is ready.",
    ],
    "energy": [
        "This is a message about your electricity bill with {utility}.",
        "Your account shows a past due balance of {amount}.",
        "Your power may be disconnected within {hours} hours unless payment is received.",
        "You could save up to {percent} percent on your energy bill with free solar panels.",
        "A technician is available in {city} on {weekday} to assess your home.",
        "Press one to switch to our fixed rate plan and lock in your price until {year}.",
    ],
    "survey": [
        "Hello, we are conducting a short survey about {topic} in your area.",
        "It will only take {minutes} minutes and you could win a {prize}.",
        "On a scale of one to five, how satisfied are you with your current {topic}?",
        "Please press the number on your keypad that best matches your answer.",
        "Thank you for taking part in our customer satisfaction survey.",
        "Your opinion about {topic} really matters to us.",
    ],
    "prize": [
        "Congratulations {first}, you have been selected as this week's winner of a {prize}.",
        "To claim your prize you only need to pay a processing fee of {small_amount}.",
        "Your winning reference number is {case_no}.",
        "This offer is valid until {date}, so call us now at {phone}.",
        "You have won an all expenses paid cruise to {destination} for two people.",
        "Our records show that your prize of {amount} has not been claimed yet.",
    ],
    "generic": [
        "Please stay on the line, your call is important to us.",
        "To be removed from our list, press nine.",
        "This call may be recorded for quality and training purposes.",
        "If you are not {first} {last}, please hang up now.",
        "Hi, it's {agent}, sorry I missed you, please call me back at {phone}.",
        "Our office hours are Monday to Friday, eight a.m. to six p.m.",
        "Press zero to repeat this message.",
    ],
}

FIRST_NAMES = [
    "John",
    "Mary",
    "Robert",
    "Linda",
    "Michael",
    "Susan",
    "David",
    "Karen",
    "James",
    "Patricia",
    "Daniel",
    "Jennifer",
    "Carlos",
    "Maria",
    "Wei",
    "Aisha",
    "Peter",
    "Grace",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Lee",
    "Walker",
]
AGENTS = ["Sarah", "Jessica", "Kevin", "Emily", "Mark", "Rachel", "Tom", "Amanda", "Steve"]
BANKS = [
    "First National Bank",
    "your credit union",
    "Citizens Bank",
    "the bank security team",
    "Chase card services",
    "Wells Fargo",
    "Bank of America",
    "Capital One",
]
LENDERS = ["Quick Cash Lending", "Premier Loans", "National Funding", "EasyCredit"]
STORES = ["Walmart", "Amazon", "Best Buy", "Target", "Apple", "an online electronics store"]
COURIERS = ["the postal service", "FedEx", "UPS", "DHL", "the parcel delivery center"]
UTILITIES = ["City Power and Light", "your energy provider", "National Grid", "Metro Electric"]
CARS = ["Ford F one fifty", "Toyota Camry", "Honda Civic", "Chevy Silverado", "vehicle", "car"]
CITIES = [
    "Houston",
    "Chicago",
    "Phoenix",
    "Dallas",
    "Miami",
    "Denver",
    "Seattle",
    "Atlanta",
    "Boston",
    "San Diego",
    "your area",
]
COURSES = ["nursing", "business administration", "medical billing", "computer science", "accounting"]
TOPICS = ["internet service", "health care", "local elections", "home security", "mobile phone plan"]
PRIZES = [
    "brand new car",
    "five hundred dollar gift card",
    "free vacation",
    "new iPhone",
    "thousand dollar shopping voucher",
]
DESTINATIONS = ["the Bahamas", "Cancun", "Hawaii", "Jamaica", "Florida"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
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

_FIELD = re.compile(r"\{(\w+)\}")


def _phone(rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        return f"1-800-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    if style == 1:
        return f"{rng.randint(201, 989)} {rng.randint(200, 999)} {rng.randint(0, 9999):04d}"
    return " ".join(str(rng.randint(0, 9)) for _ in range(10))


def _amount(rng: random.Random, lo: int, hi: int) -> str:
    value = rng.randint(lo, hi)
    if rng.random() < 0.5:
        value = round(value, -2) or value
    if rng.random() < 0.3:
        return f"${value:,}.{rng.randint(0, 99):02d}"
    return f"{value:,} dollars" if rng.random() < 0.5 else f"${value:,}"


def _date(rng: random.Random) -> str:
    month = rng.choice(MONTHS)
    day = rng.randint(1, 28)
    if rng.random() < 0.5:
        return f"{month} {day}"
    return f"{month} {day}, {rng.randint(2024, 2027)}"


def _en_value(field: str, rng: random.Random) -> str:
    generators = {
        "first": lambda: rng.choice(FIRST_NAMES),
        "last": lambda: rng.choice(LAST_NAMES),
        "agent": lambda: rng.choice(AGENTS),
        "bank": lambda: rng.choice(BANKS),
        "lender": lambda: rng.choice(LENDERS),
        "store": lambda: rng.choice(STORES),
        "courier": lambda: rng.choice(COURIERS),
        "utility": lambda: rng.choice(UTILITIES),
        "car": lambda: rng.choice(CARS),
        "city": lambda: rng.choice(CITIES),
        "course": lambda: rng.choice(COURSES),
        "topic": lambda: rng.choice(TOPICS),
        "prize": lambda: rng.choice(PRIZES),
        "destination": lambda: rng.choice(DESTINATIONS),
        "weekday": lambda: rng.choice(WEEKDAYS),
        "amount": lambda: _amount(rng, 250, 50000),
        "small_amount": lambda: f"${rng.randint(1, 99)}.{rng.randint(0, 99):02d}",
        "percent": lambda: str(rng.choice([2, 3, 4, 5, 7, 9, 12, 15, 20, 30, 40, 50])),
        "date": lambda: _date(rng),
        "phone": lambda: _phone(rng),
        "last4": lambda: f"{rng.randint(0, 9999):04d}",
        "case_no": lambda: (
            f"{rng.choice('ABCDEFGHKLMNPRSTWXYZ')}{rng.choice('ABCDEFGHKLMNPRSTWXYZ')}-{rng.randint(10000, 999999)}"
        ),
        "months": lambda: str(rng.choice([6, 9, 12, 18, 24])),
        "minutes": lambda: str(rng.choice([2, 3, 5])),
        "hours": lambda: str(rng.choice([24, 48, 72])),
        "year": lambda: str(rng.randint(2025, 2030)),
    }
    return generators[field]()


def render_en(template: str, rng: random.Random) -> str:
    """Fill the ``{placeholders}`` of an English template with random values."""
    return _FIELD.sub(lambda m: _en_value(m.group(1), rng), template)


def all_en_templates() -> list[str]:
    """All English templates, in a fixed order."""
    return [t for cat in EN_TEMPLATES.values() for t in cat]


# --------------------------------------------------------------------------- Mandarin

ZH_TEMPLATES: list[str] = [
    "您好，这里是{bank}客服中心，您的信用卡在{date}有一笔{amount}的异常消费。",
    "如非本人操作，请按一号键转人工服务。",
    "尊敬的{name}，您的快递因地址不详被退回，请按一号键重新派送。",
    "您好，您的医保卡已被冻结，请尽快联系{city}社保中心。",
    "恭喜您获得本公司周年庆{prize}一份，请拨打{phone}领取。",
    "您好，我们是{company}，现在为您提供低息贷款，最高可贷{amount}。",
    "无需抵押，当天放款，详情请按一号键咨询。",
    "您好，您的账户存在风险，请立即将资金转入安全账户。",
    "这里是{city}公安局，您涉嫌一起洗钱案件，案件编号{case_no}。",
    "您好，您的话费余额不足{small}元，请及时充值以免停机。",
    "您的孩子报名的{course}课程即将开课，请按一号键了解详情。",
    "您好，您的电费已欠费{small}元，将于{date}停止供电。",
    "我们正在进行一项关于{topic}的满意度调查，大约需要两分钟。",
    "您好，您有一笔{amount}的退税尚未领取，请在{date}之前办理。",
    "尊敬的客户，您的车险将于{date}到期，续保可享受八折优惠。",
    "您好，这里是{company}，您的积分即将清零，请按一号键兑换礼品。",
    "感谢您的接听，如需退订请按九号键。",
    "您好，您的网购订单出现质量问题，我们将为您办理{amount}的理赔。",
    "{name}您好，您的贷款申请已通过审核，请保持电话畅通。",
    "温馨提示，本次通话可能会被录音，请勿挂机。",
    "您好，您的宽带即将到期，现在续费可以免费升级到千兆。",
    "请输入您的银行卡密码以完成身份验证。",
]

ZH_NAMES = ["王先生", "李女士", "张先生", "刘女士", "陈先生", "杨女士", "赵先生", "黄女士"]
ZH_BANKS = ["工商银行", "建设银行", "招商银行", "农业银行", "中国银行"]
ZH_CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京"]
ZH_COMPANIES = ["平安金融", "快易贷", "顺达物流", "中国移动", "京东客服"]
ZH_PRIZES = ["豪华礼品", "智能手机", "购物卡", "电饭煲"]
ZH_COURSES = ["英语", "编程", "奥数", "钢琴"]
ZH_TOPICS = ["网络服务", "医疗服务", "公共交通", "物业管理"]
ZH_DIGITS = "零幺二三四五六七八九"


def _zh_value(field: str, rng: random.Random) -> str:
    generators = {
        "name": lambda: rng.choice(ZH_NAMES),
        "bank": lambda: rng.choice(ZH_BANKS),
        "city": lambda: rng.choice(ZH_CITIES),
        "company": lambda: rng.choice(ZH_COMPANIES),
        "prize": lambda: rng.choice(ZH_PRIZES),
        "course": lambda: rng.choice(ZH_COURSES),
        "topic": lambda: rng.choice(ZH_TOPICS),
        "amount": lambda: f"{rng.choice([3, 5, 8, 10, 20, 50, 100, 200]) * 1000}元",
        "small": lambda: str(rng.randint(10, 500)),
        "date": lambda: f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日",
        "phone": lambda: "幺" + "".join(rng.choice(ZH_DIGITS) for _ in range(10)),
        "case_no": lambda: "".join(rng.choice(ZH_DIGITS) for _ in range(6)),
    }
    return generators[field]()


def render_zh(template: str, rng: random.Random) -> str:
    """Fill the ``{placeholders}`` of a Mandarin template with random values."""
    return _FIELD.sub(lambda m: _zh_value(m.group(1), rng), template)
