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

# Survey comments are composed from topic clauses (simulator/comments.py). COMMENT_CLAUSES[language][topic]
# holds (negative, neutral, positive) clauses; each is written lower-case without final punctuation, so
# that two can be joined ("... mais ...", "... and ..."). French ones carry accents. Topic-less comments
# are in GENERIC_COMMENTS[language][polarity].
COMMENT_TOPICS = ("billing", "delivery", "price", "product", "refund", "staff", "support")
COMMENT_POLARITIES = ("negative", "neutral", "positive")
COMMENT_CLAUSES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {
    "fr": {
        "billing": (
            ("j'ai été prélevé deux fois", "paiement refusé sans raison", "il y a une erreur sur ma facture",
             "la facture n'est toujours pas disponible", "ma carte a été débitée deux fois",
             "le prélèvement a échoué et personne ne m'a prévenu", "le montant facturé est incorrect",
             "impossible de payer par carte sur le site", "on m'a facturé une commande que je n'ai jamais passée",
             "le paiement a été rejeté plusieurs fois"),
            ("facture reçue par mail", "paiement par carte bancaire", "prélèvement effectué à la date habituelle",
             "j'ai réglé par virement", "la facture est arrivée avec la commande", "paiement en trois fois",
             "facturation habituelle", "le montant de la facture correspond à la commande",
             "j'ai mis à jour ma carte bancaire"),
            ("paiement simple et rapide", "facture claire", "aucun souci de paiement",
             "le paiement en plusieurs fois est très pratique", "prélèvement passé sans problème",
             "la facturation est limpide", "paiement sécurisé et efficace",
             "règlement par carte sans aucune difficulté", "facture envoyée immédiatement, parfait"),
        ),
        "delivery": (
            ("colis livré avec trois jours de retard", "la livraison n'est pas arrivée à la date promise",
             "pas livré à temps", "le colis n'a jamais été livré", "le colis est resté bloqué une semaine au dépôt",
             "livraison très lente", "le suivi du colis ne marche pas", "commande reçue en retard",
             "délai de livraison beaucoup trop long", "le transporteur a perdu mon colis"),
            ("colis reçu mardi", "la livraison a pris le temps prévu", "livraison correcte, sans plus",
             "livré en point relais comme demandé", "délai de livraison dans la moyenne",
             "le colis est arrivé, rien de particulier", "livraison standard", "j'ai reçu ma commande en cinq jours",
             "livraison dans les délais annoncés"),
            ("livraison rapide", "colis reçu dès le lendemain, top", "livré en avance sur la date prévue",
             "aucun problème avec la livraison", "livraison ponctuelle", "colis bien emballé et livré à l'heure",
             "commande arrivée plus tôt que prévu", "livraison impeccable, rien à redire",
             "jamais eu de souci de livraison avec vous", "expédition très rapide"),
        ),
        "price": (
            ("beaucoup trop cher", "les prix ont encore augmenté", "frais de port excessifs",
             "trop cher pour ce que c'est", "tarif abusif", "rapport qualité-prix décevant",
             "le prix n'est pas justifié", "c'est moins cher ailleurs", "prix exorbitant", "hors de prix"),
            ("prix dans la moyenne", "tarif correct", "le prix est le même qu'en magasin", "prix habituel",
             "des prix comparables à la concurrence", "prix standard pour ce type d'article",
             "ni cher ni bon marché", "le prix affiché a été respecté", "tarifs inchangés depuis l'an dernier"),
            ("prix très attractifs", "excellent rapport qualité-prix", "moins cher que chez les concurrents",
             "de bonnes promotions", "tarif très raisonnable", "frais de port offerts, c'est top",
             "prix imbattables", "pas cher du tout", "bon prix pour la qualité"),
        ),
        "product": (
            ("l'article est arrivé cassé", "produit de mauvaise qualité", "la taille ne correspond pas du tout",
             "l'appareil a cessé de fonctionner au bout d'une semaine", "l'article ne ressemble pas à la photo",
             "le produit n'est pas conforme à la description", "tissu décevant, il bouloche déjà",
             "écran rayé à la réception", "il manquait une pièce dans la boîte", "produit défectueux"),
            ("produit conforme à la description", "qualité moyenne", "article correct, sans plus",
             "le produit fait le travail", "produit classique, rien d'exceptionnel", "l'article est tel qu'annoncé",
             "je n'ai pas encore testé le produit", "le produit est correct pour son usage", "produit basique"),
            ("très bonne qualité", "produit solide et bien fini", "l'article est magnifique",
             "le produit fonctionne parfaitement", "superbe qualité de fabrication", "la taille est parfaite",
             "ravie de ce produit", "article de qualité, je l'adore", "aucun défaut sur l'article",
             "produit pas du tout décevant"),
        ),
        "refund": (
            ("toujours pas remboursé", "remboursement toujours pas reçu après un mois",
             "le remboursement traîne depuis des semaines", "on refuse de me rembourser",
             "remboursement partiel seulement", "j'attends encore mon remboursement",
             "retour reçu chez vous et jamais remboursé", "le remboursement a été refusé",
             "remboursement bien trop long"),
            ("remboursement en cours", "demande de remboursement envoyée", "j'ai fait un retour pour remboursement",
             "le remboursement est prévu sous quatorze jours", "remboursement reçu sous forme de bon d'achat",
             "j'attends le remboursement, on verra", "remboursement effectué sur ma carte",
             "retour enregistré, remboursement à venir", "le remboursement a suivi la procédure"),
            ("remboursement rapide", "remboursée en deux jours, merci", "aucun problème pour me faire rembourser",
             "remboursement intégral sans discuter", "le remboursement est arrivé très vite",
             "retour et remboursement faciles", "geste commercial apprécié",
             "remboursement effectué sans aucune difficulté", "bien remboursé, efficace"),
        ),
        "staff": (
            ("conseiller désagréable", "l'agent m'a raccroché au nez", "vendeuse très impolie",
             "le personnel du magasin était méprisant", "l'employée n'était pas aimable", "conseiller incompétent",
             "l'agent ne savait pas répondre à mes questions", "accueil froid en magasin",
             "le vendeur ne m'a même pas dit bonjour"),
            ("conseillère correcte, sans plus", "le vendeur était ni aimable ni désagréable",
             "l'accueil en magasin était correct", "personnel correct", "l'employé a fait le minimum",
             "vendeur correct, rien de spécial", "l'agent était poli, sans plus", "conseiller ni sympa ni désagréable"),
            ("conseillère d'une grande amabilité", "l'agent était patient et à l'écoute",
             "vendeur souriant et de bon conseil", "personnel accueillant", "agent compétent et poli",
             "merci à la conseillère pour sa gentillesse", "l'équipe du magasin est adorable",
             "le conseiller a été d'une grande aide", "accueil chaleureux en boutique"),
        ),
        "support": (
            ("service client injoignable", "personne ne répond au téléphone", "j'ai dû appeler trois fois",
             "aucune réponse à mes mails", "le chat ne sert à rien", "mon problème n'est toujours pas résolu",
             "attente interminable au service client", "dossier fermé sans solution",
             "on m'a renvoyé d'un service à l'autre", "le SAV ne donne aucune nouvelle"),
            ("j'ai contacté le service client", "ticket ouvert auprès du support",
             "le service client m'a répondu sous deux jours", "appel au service client pour un renseignement",
             "demande traitée par mail", "le SAV a pris ma demande en compte",
             "réponse standard du service client", "le service client a transmis ma demande"),
            ("service client très réactif", "problème résolu en un appel", "le SAV a été efficace",
             "réponse rapide du service client", "aucun souci avec le service client", "support au top",
             "ma demande a été traitée dans la journée", "service après-vente impeccable",
             "le chat m'a aidé en quelques minutes"),
        ),
    },
    "en": {
        "billing": (
            ("I was charged twice", "payment declined for no reason", "there's a mistake on my invoice",
             "the invoice still isn't available", "my card was debited twice",
             "the direct debit failed and nobody told me", "wrong amount billed",
             "couldn't pay by card on the website", "I was billed for an order I never placed",
             "the payment kept getting rejected"),
            ("invoice received by email", "paid by card", "direct debit taken on the usual date",
             "I paid by bank transfer", "the invoice came with the order", "paid in three instalments",
             "the usual billing", "the invoice amount matches the order", "I updated my card details"),
            ("payment was quick and easy", "clear invoice", "no issue with the payment",
             "paying in instalments is really handy", "direct debit went through without a problem",
             "billing is crystal clear", "secure, smooth payment", "paid by card without any trouble",
             "invoice sent straight away, perfect"),
        ),
        "delivery": (
            ("the parcel arrived three days late", "not delivered on time", "delivery took forever",
             "the courier never showed up", "my package was stuck at the depot for a week",
             "tracking never updated", "shipping was really slow", "the order came a week after the promised date",
             "the box arrived crushed", "the carrier lost my parcel"),
            ("delivered within the stated time", "the parcel arrived on Tuesday", "delivery took the usual four days",
             "standard delivery", "picked it up at the collection point", "shipping time was average",
             "the package came, nothing special", "delivery was as expected", "received my order after five days"),
            ("fast delivery", "arrived the next day", "delivered earlier than expected", "no problem with the delivery",
             "the parcel came well packed and on time", "super quick shipping", "delivery was spot on",
             "never had a delivery issue with you", "the courier was punctual"),
        ),
        "price": (
            ("way too expensive", "prices went up again", "shipping fees are excessive", "overpriced for what it is",
             "the price is a rip-off", "poor value for money", "the price isn't justified", "it's cheaper elsewhere",
             "extortionate prices"),
            ("prices are average", "the price is standard", "same price as in the shop", "the usual price",
             "prices comparable to competitors", "standard price for this kind of item", "neither cheap nor expensive",
             "the price matched the listing", "prices unchanged since last year"),
            ("very attractive prices", "excellent value for money", "cheaper than the competition", "great deals",
             "very reasonable price", "free shipping, nice touch", "unbeatable prices", "not expensive at all",
             "good price for the quality"),
        ),
        "product": (
            ("the item arrived broken", "poor quality", "the size is completely off",
             "the device stopped working after a week", "it looks nothing like the picture",
             "the product does not match the description", "the fabric started pilling after one wash",
             "the screen was scratched", "a part was missing from the box", "faulty product"),
            ("the product matches the description", "average quality", "the item is okay, nothing more",
             "the product does the job", "a basic product", "the item is as advertised",
             "haven't tried the product yet", "a standard item for the category", "the product is what I ordered"),
            ("great quality", "the product works perfectly", "the item is beautiful", "excellent build quality",
             "fits perfectly", "really happy with this product", "no defects at all on the item",
             "the product is not disappointing at all", "lovely item, I use it every day"),
        ),
        "refund": (
            ("still not refunded", "refund still not received after a month",
             "the refund has been dragging on for weeks", "they refuse to refund me", "only a partial refund",
             "still waiting for my refund", "you got my return and never refunded me", "my refund was denied",
             "the refund took far too long"),
            ("refund in progress", "refund request sent", "I sent the item back for a refund",
             "the refund is due within fourteen days", "refunded as a voucher", "waiting for the refund, we'll see",
             "refund issued to my card", "return registered, refund to follow",
             "the refund followed the usual procedure"),
            ("quick refund", "refunded within two days, thanks", "no problem getting my money back",
             "full refund, no questions asked", "the refund came through very fast", "easy return and refund",
             "the goodwill refund was appreciated", "refund processed without any hassle",
             "got my money back promptly, efficient"),
        ),
        "staff": (
            ("the advisor was unpleasant", "the agent hung up on me", "very rude shop assistant",
             "the store staff were condescending", "the employee was not friendly", "incompetent advisor",
             "the agent couldn't answer my questions", "cold welcome in the store",
             "the sales assistant didn't even say hello"),
            ("the advisor was okay, nothing more", "the sales assistant was neither friendly nor rude",
             "the welcome in the store was okay", "the staff were okay", "the employee did the bare minimum",
             "average shop assistant, nothing special", "the agent was polite enough, nothing more",
             "the advisor was alright"),
            ("very friendly advisor", "the agent was patient and listened", "smiling and helpful sales assistant",
             "welcoming staff", "thanks to the advisor for her kindness", "the shop team is lovely",
             "competent and polite agent", "the advisor was a great help", "warm welcome in the shop"),
        ),
        "support": (
            ("customer service is unreachable", "nobody answers the phone", "I had to call three times",
             "no reply to my emails", "the chat is useless", "my issue still isn't resolved",
             "endless wait on the hotline", "ticket closed without a solution",
             "I was passed from one department to another", "after-sales never got back to me"),
            ("I contacted customer service", "opened a ticket with support", "customer service replied within two days",
             "called the helpline for information", "request handled by email", "support logged my request",
             "a standard reply from customer service", "customer service forwarded my request"),
            ("very responsive customer service", "problem solved in one call", "after-sales was efficient",
             "quick answer from customer service", "no issue with customer service", "support was brilliant",
             "my request was handled the same day", "excellent after-sales service",
             "the chat sorted me out in minutes"),
        ),
    },
}
GENERIC_COMMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "fr": (
        ("très déçu", "nul", "plus jamais", "expérience décevante", "je ne recommande pas", "pas satisfait du tout",
         "catastrophique", "je suis mécontente"),
        ("RAS", "rien à signaler", "correct", "ça va", "pas d'avis particulier", "sans commentaire", "ni bien ni mal",
         "comme d'habitude"),
        ("parfait", "vraiment satisfaite", "je recommande", "rien à redire", "top, merci", "excellent", "au top",
         "très bonne expérience"),
    ),
    "en": (
        ("very disappointed", "terrible", "never again", "a disappointing experience", "would not recommend",
         "not happy at all", "awful", "really unhappy"),
        ("fine", "ok", "nothing to report", "nothing much to say", "average experience", "as usual", "nothing special",
         "it was alright"),
        ("perfect", "very happy", "highly recommend", "nothing to complain about", "great, thanks", "excellent",
         "all good", "lovely experience"),
    ),
}

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
    clauses = [c for by_topic in COMMENT_CLAUSES.values() for table in by_topic.values() for c in table]
    generic = [c for tables in GENERIC_COMMENTS.values() for c in tables]
    for group in (FIRST_PLAIN, FIRST_ACCENTED, LAST_PLAIN, LAST_ACCENTED, PRODUCT_CATEGORIES, CARRIERS,
                  *clauses, *generic):
        for w in group:
            w.encode("cp1252")


_check_cp1252()
