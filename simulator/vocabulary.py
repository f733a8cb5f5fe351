"""Word lists of the simulated company. Every string here is encodable in cp1252 (the ERP's encoding)."""

from __future__ import annotations

import unicodedata

# (first names without accents, first names with accents)
FIRST_PLAIN = (
    "Marie", "Jean", "Pierre", "Sophie", "Thomas", "Julie", "Nicolas", "Camille", "Lucas", "Emma",
    "Olivier", "Claire", "David", "Sarah", "James", "Emily", "Oliver", "Charlotte", "Henry", "Grace",
    "Paul", "Laura", "Hugo", "Alice", "Louis", "Manon", "Arthur", "Jade", "Victor", "Lina",
)
FIRST_ACCENTED = (
    "Élodie", "François", "Hélène", "Jérôme", "Chloé", "Zoë", "Benoît", "Léa", "Noël", "Gaëlle",
    "Anaïs", "Céline", "Mathéo", "Loïc", "Agnès", "Frédéric", "Renée", "Zoé", "Inès", "Maël",
)
LAST_PLAIN = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Michel", "Garcia", "Smith", "Jones", "Taylor", "Brown", "Wilson", "O'Brien",
    "Roux", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller",
)
LAST_ACCENTED = (
    "Lefèvre", "Bérubé", "Gérard", "Mégane", "Pâris", "Crémieux", "Hébert", "Béranger", "Lemaître", "Noël",
    "Châtelain", "Désiré", "Évrard", "Ménard", "Séguin", "Thévenin", "Müller", "Brontë", "Renée", "Aubé",
)

# country, currency, share of customers, phone country code, cities
COUNTRIES = (
    ("FR", "EUR", 0.62, "33", ("Paris", "Lyon", "Marseille", "Besançon", "Orléans", "Nîmes", "Saint-Étienne",
                              "Lille", "Nantes", "Montréal-la-Cluse")),
    ("BE", "EUR", 0.10, "32", ("Bruxelles", "Liège", "Namur", "Anvers")),
    ("CH", "CHF", 0.06, "41", ("Genève", "Zürich", "Lausanne", "Neuchâtel")),
    ("GB", "GBP", 0.12, "44", ("London", "Manchester", "Bristol", "Leeds")),
    ("DE", "EUR", 0.10, "49", ("Berlin", "München", "Köln", "Düsseldorf")),
)

EMAIL_DOMAINS = ("gmail.com", "outlook.fr", "orange.fr", "yahoo.co.uk", "free.fr", "proton.me", "icloud.com")
WORK_DOMAINS = ("acme-sarl.fr", "dupont-freres.com", "blueharbour.co.uk", "atelier-lumiere.fr")

PERSONAS = ("bargain_hunter", "loyal_regular", "busy_professional", "gift_buyer", "tech_enthusiast")
# latent sentiment offset of each persona (adds to a standard normal)
PERSONA_SENTIMENT = (-0.3, 0.5, -0.1, 0.1, 0.0)
ACQUISITION_CHANNELS = ("paid_search", "social", "display", "referral", "email")

# the ERP is French: its product categories are French words (and make its files genuinely cp1252)
PRODUCT_CATEGORIES = ("électronique", "maison", "mode", "beauté", "livres", "jardin")
# median unit price per category, in cents
CATEGORY_PRICE_CENTS = (18_000, 6_500, 4_500, 2_500, 1_800, 5_500)
CARRIERS = ("Colissimo", "Chronopost", "DHL", "UPS", "Mondial Relay")
# mean extra transit days beyond the promise-neutral baseline, per carrier (drives lateness)
CARRIER_DELAY_MEAN = (0.55, 0.25, 0.45, 0.40, 0.9)

PLANS = ("essentiel", "plus", "premium")
PLAN_MRR_CENTS = (990, 1990, 4990)
CANCEL_REASONS = ("too_expensive", "poor_service", "not_using", "moved_to_competitor", "other")
FAILURE_REASONS = ("insufficient_funds", "card_expired", "do_not_honor", "authentication_required")

# Survey comments by sentiment band (negative / neutral / positive); French ones carry accents.
COMMENTS_FR = (
    ("Livraison en retard, personne ne répond.", "Colis abîmé et service client injoignable.",
     "Très déçu : remboursement toujours pas reçu.", "Il a fallu rappeler trois fois, épuisant."),
    ("Correct, sans plus.", "Délai un peu long mais produit conforme.", "Ça fait l'affaire."),
    ("Très satisfaite, livraison rapide !", "Service impeccable, je recommande à mes collègues.",
     "Conseillère très aimable, problème réglé en 5 minutes.", "Qualité au rendez-vous, merci."),
)
COMMENTS_EN = (
    ("Parcel arrived late and nobody answered my emails.", "Charged twice, still waiting for the refund.",
     "Had to call three times to get this sorted."),
    ("It was fine.", "Okay, but delivery took a while.", "Average experience."),
    ("Great service, fast delivery!", "Friendly agent, sorted in minutes.", "Love it, will order again."),
)

SURVEY_IDS = {
    ("nps", "relationship"): "relationship_nps_v2",
    ("nps", "onboarding"): "onboarding_nps_v1",
    ("csat", "delivery"): "post_delivery_v3",
    ("csat", "support"): "support_csat_v2",
    ("ces", "support"): "support_ces_v1",
    ("ces", "purchase"): "checkout_ces_v1",
    ("csat", "billing"): "billing_csat_v1",
}


def ascii_fold(s: str) -> str:
    """'Élodie' -> 'Elodie', "O'Brien" -> "OBrien" (for e-mail local parts)."""
    folded = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded if ch.isalnum() or ch in "-")


def _check_cp1252() -> None:
    for group in (FIRST_PLAIN, FIRST_ACCENTED, LAST_PLAIN, LAST_ACCENTED, PRODUCT_CATEGORIES, CARRIERS):
        for w in group:
            w.encode("cp1252")


_check_cp1252()
