"""A charge's payment method in the words a buyer knows: "Visa •••• 4242", "SEPA Direct Debit •••• 3000"."""

from typing import Any

# Stripe's `payment_method_details.type` values; an unknown type is shown in words made from it.
TYPES = {
    "acss_debit": "Pre-authorized debit",
    "affirm": "Affirm",
    "afterpay_clearpay": "Afterpay",
    "alipay": "Alipay",
    "amazon_pay": "Amazon Pay",
    "au_becs_debit": "BECS Direct Debit",
    "bacs_debit": "Bacs Direct Debit",
    "bancontact": "Bancontact",
    "blik": "BLIK",
    "boleto": "Boleto",
    "card": "Card",
    "card_present": "Card",
    "cashapp": "Cash App Pay",
    "eps": "EPS",
    "giropay": "giropay",
    "ideal": "iDEAL",
    "klarna": "Klarna",
    "konbini": "Konbini",
    "link": "Link",
    "mobilepay": "MobilePay",
    "multibanco": "Multibanco",
    "oxxo": "OXXO",
    "p24": "Przelewy24",
    "paypal": "PayPal",
    "revolut_pay": "Revolut Pay",
    "sepa_debit": "SEPA Direct Debit",
    "sofort": "Sofort",
    "twint": "TWINT",
    "us_bank_account": "US bank account",
    "wechat_pay": "WeChat Pay",
}
# `card.brand` values.
BRANDS = {
    "amex": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "interac": "Interac",
    "jcb": "JCB",
    "link": "Link",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}
WALLETS = {
    "amex_express_checkout": "Amex Express Checkout",
    "apple_pay": "Apple Pay",
    "google_pay": "Google Pay",
    "link": "Link",
    "masterpass": "Masterpass",
    "samsung_pay": "Samsung Pay",
    "visa_checkout": "Visa Checkout",
}


def _words(code: str) -> str:
    return code.replace("_", " ").strip().capitalize()


def describe_payment_method(details: dict[str, Any] | None) -> str:
    """`charge.payment_method_details` → words; "" when the charge says nothing."""
    details = details or {}
    kind = str(details.get("type") or "")
    info = details.get(kind) if isinstance(details.get(kind), dict) else {}
    brand = str(info.get("brand") or "")
    name = BRANDS.get(brand, _words(brand)) if brand else TYPES.get(kind, _words(kind))
    if info.get("last4"):
        name = f"{name} •••• {info['last4']}"
    wallet = (info.get("wallet") or {}).get("type") if isinstance(info.get("wallet"), dict) else ""
    if wallet:
        name = f"{WALLETS.get(wallet, _words(wallet))} ({name})"
    return name
