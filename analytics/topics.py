"""Topics and sentiment of French and English survey comments, by rules and lexicons.

Pure standard library (it runs inside ingestion, which imports without numpy or polars): no model,
nothing to download, deterministic and fast (well under a millisecond a comment).

``tag(text, language)`` -> ``Tagged``: the topics a comment speaks of (``TOPICS``, several or none),
the polarity of each topic, and the comment's overall polarity (``POLARITIES``).

How:

1. **Normalise**: lower case; typographic apostrophes and quotes made plain; accents stripped, so
   "livre en retard" matches "livré en retard"; runs of punctuation collapsed ("!!!" is kept as a
   strong exclamation, "???" as a strong question); emoticons and marks such as "9/10" become
   polarity words. French elisions are expanded ("n'est" -> "ne est", "l'article" -> "le article"),
   English contractions too ("didn't" -> "did not").
2. **Language**: 'fr' or 'en' as given; otherwise (missing, unknown) detected by counting each
   language's stop words, and when that is a tie, the lexicon that recognises more wins.
3. **Cues**, matched on tokens, longest first (a trailing ``*`` matches any ending: "rembours*"; a
   lone ``*`` any one word): *fixed phrases* first ("no problem", "aucun souci", "sans problème",
   "rien à redire", "not bad", "pas terrible"), whose polarity is never flipped; then *topic cues*,
   strong ones (the topic's own words: "refund", "livraison") and weak ones marked ``~`` (things
   that also appear in passing: "item", "returned", "l'agent"), which count only when no strong cue
   of another topic shares their clause ("returned the item, still no refund": refund only); then
   *polarity cues* with a weight, and "expectation" words ("delivered", "répond", "works") that
   count only when negated ("never arrived", "personne ne répond").
4. **Negation**: a negator ("not", "never", "no", "nobody", "without", "pas", "jamais", "aucun",
   "personne", "rien", "sans", "ni", "non", and "ne ... pas/plus/jamais/rien" split around the
   verb) reaches a few words after it within its clause (with "ne V pas", the verb only). A
   negated positive cue counts negative; a negated negative cue counts positive (somewhat less)
   only when it is the word the negator governs ("pas cher", not "didn't understand my problem").
   A settled fixed phrase's negator ("no problem") negates nothing else.
5. **Weights**: intensifiers ("very", "très") multiply the next cue, diminishers ("a bit", "un
   peu") damp it; "too"/"trop" before a word that is no cue makes it negative ("trop long"); a
   problem that was resolved ("mistake corrected", "problème réglé") is no complaint; a contrast
   ("but", "however", "mais", "par contre", "sauf") damps what came before and weighs what follows
   more; a concession ("although", "même si", "malgré") is damped; "!" strengthens its sentence.
6. **Polarity**: a topic takes the polarity of the clause it sits in (or of its sentence when the
   clause holds no cue); the comment's is its weighted sum, neutral within a band around 0, and
   neutral too when it is mixed (clearly positive and clearly negative parts, neither dominating).

``evaluate(rows)`` scores the tagger against hand-labelled rows: per language, the multi-label topic
macro-F1 and the polarity macro-F1, with per-class figures (F1 computed here, no sklearn).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOPICS = ("billing", "delivery", "price", "product", "refund", "staff", "support")
POLARITIES = ("negative", "neutral", "positive")
LANGUAGES = ("en", "fr")

NEUTRAL_BAND = 0.6  # |score| below this is neutral (a lone "ok", "fine", "correct" stays neutral)
MIXED_RATIO = 2.2  # clearly positive and negative parts: neutral unless one side outweighs the other this much
NEGATED_NEGATIVE = 0.8  # a negated negative cue counts this share of its weight, positive
NEGATION_WINDOW = 3  # content words after a negator that it reaches
INTENSIFY, DIMINISH = 1.5, 0.5
BEFORE_CONTRAST, AFTER_CONTRAST, CONCESSION = 0.8, 1.2, 0.5
EXCLAMATION, STRONG_EXCLAMATION = 1.2, 1.4
STRONG_QUESTION = -0.7  # "???": exasperation
TOO_WEIGHT = -1.0  # "too"/"trop" + a word that is no cue: "trop long", "too small"
EXCEPT_WEIGHT = -1.0  # a clause after "except"/"sauf" without a cue: "all good except the delivery"
RESOLVED_WEIGHT = 1.5  # a resolution word next to the problem it resolved: "mistake corrected"

# ---- lexicons ---------------------------------------------------------------------------------------------
# Cues go through the same normalisation as the texts (accents and elisions may be written or not).
# Topics: "topic: cue, cue, ..."; "~cue": a weak cue (see the docstring); one cue may serve two topics.
# Polarity: "cue weight [negated weight]", ';'-separated; without a negated weight a negated cue counts
# -weight (positive cue) or -NEGATED_NEGATIVE * weight (negative cue); an expectation word has weight 0
# (or small) and a negated weight ("deliver* 0 -1.5": "never delivered").
_TOPICS_EN = """
delivery: deliver*, shipping, shipped, shipment*, ship, dispatch*, parcel*, package, packages, courier*,
  carrier*, postman, postie, tracking, tracked, transit, depot, relay point, collection point, pickup point,
  pick up point, pick-up point, postal, post office, royal mail, evri, hermes, dpd, ups, dhl, fedex, colissimo,
  chronopost, mondial relay, doorstep, door step, neighbour, neighbor, arriv* late, arriv* on time,
  arriv* early, arriv* quickly, arriv* fast, arriv* promptly, arriv* in time, never arriv*, came late,
  day* late, week* late, days to arrive, weeks to arrive, next day, next-day, delivery service, postal service,
  packaging, packed, packaged, box arrived, lost in the post, delivery slot, time slot, ~on time, ~late,
  ~early, ~showed up, ~turned up, ~in the post, delivery guy, delivery man, delivery driver, delivery person,
  missed delivery, delivery note, card through the door, promised date, delivery date, expected date,
  ~received my order, ~received the order, ~got my order
price: price*, pricing, pricey, expensive, cheap, cheaper, cheapest, inexpensive, overpriced, cost, costs,
  costly, value for money, good value, great value, poor value, bad value, rip off, rip-off, afford*,
  bargain*, deal, deals, discount*, promo*, promotion*, sale, offer, offers, coupon*, voucher code,
  shipping fee*, shipping cost*, delivery fee*, delivery charge*, postage, free shipping, free delivery,
  eur, gbp, usd, euro*, pound*, worth the money, worth it, for what it is, competitor*, competition, tariff*,
  extortionate, steep, paying more, pay more, charging more, went up, gone up, price rise, price increase,
  black friday, money s worth, for the quality, cheaper elsewhere, you get what you pay for
billing: bill, bills, billed, billing, invoice*, charged, charge, charges, overcharg*, double charged,
  payment*, pay, paid, paying, payed, credit card, debit card, debited, debit, direct debit,
  transaction*, checkout, check out, ~subscription*, renewal, receipt*, vat, instalment*, installment*, paypal,
  klarna, bank, declined, statement, amount billed, amount charged, took the money, took my money,
  taken the money, taken my money, overdrawn, ~card, ~cards
refund: refund*, reimburs*, money back, credit note, store credit, voucher, compensation, compensat*,
  goodwill, ~return, ~returns, ~returned, ~returning, ~send back, ~sent back, ~sending back, ~send it back,
  ~sent it back, return label, returns label, ~exchange, ~exchanged, chargeback, cash back, want it back,
  return window, returns policy, return policy
product: product*, quality, size, sizes, sizing, fit, fits, fitting, colour*, color*, material*, fabric,
  design, ~does what it says, ~does the job, ~range, ~choice, ~selection, ~variety, stitching, build quality,
  well made, badly made, poorly made,
  ~item, ~items, ~article, ~articles, ~broken, ~broke, ~damaged, ~defect*, ~faulty, ~scratched, ~cracked,
  ~smashed, ~shattered, ~stopped working, ~works, ~working, ~doesnt work, ~shoe*, ~dress*, ~shirt*, ~jacket*,
  ~jeans, ~trousers, ~coat, ~sweater, ~jumper, ~laptop, ~headphone*, ~earbuds, ~screen, ~battery, ~charger,
  ~cable, ~device, ~machine, ~appliance, ~kettle, ~toaster, ~lamp, ~sofa, ~chair, ~table, ~toy, ~toys, ~book,
  ~books, ~cream, ~perfume, ~shampoo, ~goods, ~merchandise, ~pair, ~model, ~smartphone, ~mobile phone, ~zip,
  ~zipper, ~seams, ~pilling, ~parts, ~part was missing, ~piece, ~pieces, ~battery life, ~instructions,
  ~assembly, ~ingredients, ~taste, ~smell, ~bag, ~watch, ~jewel*, ~necklace, ~the picture, ~the photo*,
  ~the description, ~as described, ~as advertised, ~blender, ~vacuum, ~hoover, ~coffee machine, ~teapot,
  ~mug, ~mugs, ~cup, ~vase, ~phone case, ~speaker, ~tv, ~tablet, ~printer, ~glasses, ~clothes, ~clothing,
  ~t-shirt, ~trainers, ~sneakers, ~boots, ~suitcase, ~mattress, ~pillow, ~duvet, ~sheets, ~curtains, ~rug,
  ~pan, ~saucepan, ~knife, ~knives, ~plates, ~candle, ~plant, ~plants, ~seeds, ~tool, ~tools, ~drill,
  ~mower, ~furniture, ~shelf, ~armchair, ~desk, ~stock, ~out of stock, ~in stock, ~thin, ~thick
staff: rude, rudely, polite, politely, impolite, courteous, discourteous, condescending, arrogant, attitude,
  manners, warm welcome, cold welcome, friendly welcome, delivery guy, delivery man, delivery driver,
  delivery person, ~staff, ~employee*, ~agent, ~agents,
  ~advisor*, ~adviser*, ~assistant*, ~cashier*, ~salesperson, ~salesman, ~saleswoman, ~sales rep*,
  ~shop team, ~store team, ~the team, ~representative*, ~rep, ~operator, ~colleague*, ~manager, ~lady,
  ~gentleman, ~guy, ~person on the phone, ~person i spoke to, ~man on the phone, ~woman on the phone,
  ~the person, ~young man, ~young woman, ~technician, ~driver, ~welcoming, ~smiling, ~knowledgeable, ~patient,
  ~sales assistant*, ~shop assistant*, ~sales staff, ~welcome
support: customer service*, customer care, customer support, support, service, services, helpline,
  help line, hotline, call centre, call center, call*, phone call*, phoned, rang, ring them, on the phone,
  by telephone, chat, live chat, chatbot, my email*, my mail*, emailed, no reply, ticket*, complaint*,
  complain*, contact*, reach, reached, unreachable, respons*, reply, replies, replied, answer*, got back to me,
  get back to me, get back, getting back, after sales, aftersales, issue resolved, problem resolved,
  on hold, hold music, waiting time, wait time, queue, helpdesk, help desk, assistance, escalat*,
  department*, follow up, followed up, answer* the phone, pick* up the phone, picks up, by phone,
  over the phone, phone line*, callback, case number, my case, case reference, reference number, ~resolv*,
  ~unresolved, ~my issue, ~my problem, one department to another
"""

_TOPICS_FR = """
delivery: livr*, livraison*, colis, transporteur*, expedi*, point relais, relais, suivi du colis,
  suivi de colis, suivi de commande, suivi de la commande, numero de suivi, depot, facteur, la poste,
  colissimo, chronopost, dpd, ups, dhl, mondial relay, retard, en retard, de retard, arriv* en retard,
  arriv* a temps, arriv* rapidement, arriv* vite, arriv* en avance, arriv* plus tot, arriv* à l'heure,
  jamais arriv*, jamais recu, delai*, emballage*, emballe*, carton, service de livraison, avis de passage,
  paquet, ~à l'heure, ~à temps, ~en avance, ~box, ~le suivi, livreur, ~date prevue, creneau*, date promise,
  date de livraison, ~reçu ma commande, ~commande reçue
price: prix, cher, chere, chers, cheres, tarif*, cout, couts, couteux, couteuse, bon marche,
  promo*, reduction*, remise*, solde, soldes, rapport qualite prix, qualite prix, rapport qualite, frais de port,
  frais de livraison, frais d'envoi, onereux, onereuse, abordable*, eur, euro*, concurren*, ruineux,
  exorbitant*, hors de prix, arnaque, economique, economie*, offre*, gratuit*, augment*, payer plus,
  paie plus, paye plus, black friday, vaut son prix, vaut pas son prix, pour la qualite, moins cher ailleurs
billing: factur*, paiement*, payer, paye, payee, payes, payant, regle par, reglement*, prelev*, debit*,
  carte bancaire, carte de credit, carte bleue, cb, virement*, transaction*, ~abonnement*, echeance*,
  encaiss*, tva, paypal, klarna, en trois fois, en 3 fois, en plusieurs fois, en 4 fois, en quatre fois,
  banque, bancaire, montant facture, montant debite, double debit, preleve, a decouvert, ~carte, ~cartes
refund: rembours*, bon d'achat, geste commercial, dedommag*, indemnis*, compensation, avoir recu,
  un avoir, mon avoir, pas d'avoir, aucun avoir, ~retour, ~retours, ~retourne*, ~renvoye le, ~renvoyé l'article,
  ~renvoye le colis, etiquette de retour, ~echange*, ~echanger, delai de retour, delai de remboursement
product: produit*, qualite, taille*, couleur*, matiere*, tissu*, modele*, fabrication, finition*,
  ~conforme, ~non conforme, ~gamme, ~choix, bien fini, mal fini, coutures,
  ~article*, ~casse, ~cassee, ~cassees, ~casses, ~defectueu*, ~defaut*, ~fonctionne*, ~marche, ~marche pas,
  ~marche plus, ~appareil*, ~ecran*, ~batterie*, ~chargeur*, ~cable*, ~chaussure*, ~robe*, ~pantalon*,
  ~veste*, ~pull*, ~chemise*, ~jean, ~jeans, ~manteau*, ~sac, ~sacs, ~montre, ~bijou*, ~bague, ~collier,
  ~jouet*, ~creme*, ~parfum*, ~meuble*, ~canape*, ~chaise*, ~lampe*, ~machine*, ~piece manquante,
  ~pieces manquantes, ~piece, ~pieces, ~bouloche*, ~la photo, ~les photos, ~la description, ~solide,
  ~fragile, ~abime, ~abimee, ~abimes, ~abimees, ~raye*, ~notice, ~montage, ~gout, ~odeur, ~marchandise*,
  ~mixeur, ~blender, ~aspirateur, ~cafetiere, ~theiere, ~tasse*, ~mug, ~vase, ~coque, ~casque, ~ecouteurs,
  ~enceinte, ~tele, ~television, ~ordinateur, ~tablette, ~imprimante, ~lunettes, ~vetement*, ~t-shirt,
  ~baskets, ~bottes, ~valise, ~matelas, ~oreiller, ~couette, ~draps, ~rideau*, ~tapis, ~poele, ~casserole,
  ~couteau*, ~vaisselle, ~bougie*, ~plante*, ~graines, ~outil*, ~perceuse, ~tondeuse, ~fauteuil, ~etagere*,
  ~stock, ~rupture de stock, ~en morceaux, ~inutilisable, ~lache*, ~fait le travail, ~fait le job,
  ~fait ce qu'on lui demande
staff: impoli*, poli, polie, polis, courtois*, discourtois*, meprisant*, arrogant*, hautain*, desagreable*,
  aimable*, gentil*, gentillesse, amabilite, politesse, sympathique, incompetent*, competent*, de bon conseil,
  accueil froid, accueil chaleureux,
  livreur, livreuse, conseiller, conseillere, conseillers, conseilleres, ~conseil, ~vendeu*, ~personnel,
  ~employe*, ~agent, ~agents, ~equipe, ~accueil, ~accueilli*, ~accueillant*, ~hotesse*, ~caissier*, ~caissiere*,
  ~interlocut*, ~la personne, ~une personne, ~cette personne, ~le monsieur, ~la dame, ~la jeune femme,
  ~le jeune homme, ~technicien*, ~responsable*, ~manager, ~gerant*, ~souriant*, ~patient, ~patiente,
  ~patience, ~chauffeur
support: service client*, service clientele, service consommateur*, service apres vente, apres vente, sav,
  support, hotline, assistance, standard telephonique, au telephone, par telephone, appel*, rappel*, joindre,
  joignable, injoignable, chat, tchat, mes mails, mon mail, mes emails, mon email, mes messages, courriel*,
  reponse*, repond*, ticket*, reclamation*, dossier, numero de dossier, contact*, service, services,
  probleme resolu, probleme regle, resolu*, regle mon probleme, pas de retour, aucun retour, sans retour,
  mis en attente, musique d'attente, ma demande, mes demandes, prise en charge, pris en charge,
  delai de reponse, demande traitee, demande a ete traitee, un humain, une personne au telephone, ~mon probleme,
  ~mon souci, un service a l'autre,
  sans solution
"""

_POLARITY_EN = """
good 1; great 2; excellent 2; perfect 2; perfectly 2; amazing 2; awesome 2; fantastic 2; brilliant 2; superb 2
outstanding 2; wonderful 2; love 2; loved 2; loves 2; lovely 1.5; nice 1; happy 1.5; pleased 1.5; satisfied 1.5
delighted 2; glad 1; impressed 1.5; impressive 1.5; recommend 1.5; recommended 1.5; best 2; beautiful 1.5
gorgeous 1.5; fast 1; quick 1; quickly 1; rapid 1; speedy 1; prompt 1; promptly 1; swift 1; efficient 1.5
efficiently 1.5; helpful 1.5; friendly 1.5; polite 1; politely 1; kind 1; kindness 1; patient 1
professional 1; competent 1; knowledgeable 1.5; courteous 1; attentive 1; welcoming 1; warm 1; smiling 1
reasonable 1; affordable 1; bargain 1; cheap 0.5; cheaper 1; less expensive 1; easy 1; simple 0.5
smooth 1; smoothly 1; clear 1; handy 1; convenient 1; reliable 1; sturdy 1; solid 1; comfortable 1
flawless 2; impeccable 2; top 1; spot on 1.5; on time 1; in time 1; early 1; earlier 1; accurate 1
ahead of schedule 1; well packed 1; well packaged 1; well made 1.5; well 0.5; thanks 0.5; thank 0.5
cheers 0.5; thx 0.5; ty 0.5; gr8 2; resolved 1.5; solved 1.5; sorted 1.5; sorted out 1.5; fixed 1.5
corrected 1.5; rectified 1.5; appreciated 1; appreciate 1; responsive 1.5; accommodating 1; worth 1
unbeatable 1.5; attractive 1; generous 1; fair 0.5; decent 0.7; fine 0.4; ok 0.2; okay 0.2; alright 0.2
correct 0.2; acceptable 0.3; as expected 0.3; as described 0.3; as advertised 0.3; free 0.5; secure 0.5
pleasant 1; pleasure 1.5; enjoy 1; enjoyed 1; like 1; liked 1; favourite 1.5; favorite 1.5; joy 1.5
emojipos 1.5; emojineg -1.5; 5 stars 2; five stars 2; a star 1.5; star 1; legend 1.5; stars 0
immediately 1; straight away 1; right away 1; instantly 1; same day 1; within the hour 1; came through 1
next day 1; punctual 1; first call 1; first time 0.5; in minutes 1; in no time 1; informed 0.5; kept me informed 1.5
bad -1.5; poor -1.5; poorly -1.5; terrible -2; awful -2; horrible -2; horrendous -2; worst -2; useless -2
rubbish -2; garbage -2; disappointed -1.5; disappointing -1.5; disappointment -1.5; unhappy -1.5; angry -1.5
furious -2; frustrat* -1.5; annoy* -1; unacceptable -2; ridiculous -1.5; shocking -2; appalling -2
dreadful -2; disgrace* -2; shambles -2; nightmare -2; mess -1; joke -1.5; scam -2; fraud -2; pathetic -2
mediocre -1.5; impossible -1.5; in circles -1.5; aggressive -2; threatening -2; shouted -2; yelled -2
late -1.5; delay* -1; slow -1.5; slowly -1.5; forever -1; ages -1; broken -2; broke -1.5; damaged -1.5
crushed -1.5; dented -1.5; faulty -2; defective -2; defect* -1.5; scratched -1.5; cracked -1.5; smashed -2
shattered -2; missing -1.5; lost -1.5; soaked -1.5; wet -1; in the rain -1.5; wrong -1.5; mistake -1.5
mistakes -1.5; error -1.5; incorrect -1.5; twice -1; double -0.5; overdrawn -1.5
expensive -1; more expensive -1.5; overpriced -2; pricey -1; rip off -2; extortionate -2; excessive -1.5
steep -1; went up -1; gone up -1; going up -1; increased -1; price rise -1.5; price increase -1.5; hike* -1.5
rude -2; rudely -2; unpleasant -1.5; unfriendly -1.5; impolite -2; condescending -1.5; arrogant -1.5
incompetent -2; unhelpful -2; unprofessional -2; clueless -1.5; dismissive -1.5; hung up -2; hang up -1.5
script -1; scripted -1; unreachable -2; endless -1.5; declined -1.5; rejected -1.5; refused -1.5
refuse -1.5; refuses -1.5; denied -1.5; fail* -1.5; problem -1.2
problems -1.2; issue -1.2; issues -1.2; trouble -1.2; hassle -1.2; complaint -1; complain -1; difficult -1
difficulty -1; hard -0.5; cheaply made -1.5; badly made -1.5; poorly made -1.5; flimsy -1.5; thin -1
pilling -1; pills -1; falling apart -1.5; fell apart -1.5; ripped -1.5; torn -1.5; leak* -1.5; stain* -1
dirty -1.5; smelly -1.5; cold -1; waste -1.5; wasted -1.5; confusing -1; confused -1; smaller than -1
waiting -0.5; wait -0.5; waited -0.7; drag* -1.5; partial -1; cheaper elsewhere -1.5; still waiting -1.5;
chasing -1.5; chase -1; worse -1.5; lied -2
lies -2; unclear -1; hidden -1; pointless -1.5; avoid -1.5; regret -1.5; cancel* -0.5; stuck -1.5
crap -2; meh -0.5; average -0.3; mixed -0.3; underwhelming -1.5; sadly -1; unfortunately -1; upset -1.5
sorry -0.3; again -0.7; had to -0.7; asap -0.5; i was home -1; i was at home -1; i was in all day -1
was promised -0.7
been a month -1.5; been a week -1; been weeks -1.5; been months -1.5; been ages -1.5; been * weeks -1.5
been * days -1; took * calls -1.2; three calls -1; several calls -1; multiple calls -1; where is my -1
still no -1.5
deliver* 0 -1.5; arriv* 0 -1.5; receiv* 0 -1.5; came 0 -1.5; come 0 -1.5; show* 0 -1.5; turned up 0 -1.5
answer* 0 -1.5; repl* 0 -1.5; respond* 0 -1.5; response* 0 -1.5; call back 0 -1.5; called back 0 -1.5
get back 0 -1.5; got back 0 -1.5; hear back 0 -1.5; heard back 0 -1.5; heard 0 -1.5; contact* 0 -1.5
work 0.5 -1.5; works 0.5 -1.5; worked 0.5 -1.5; working 0.5 -1.5; fit 0.5 -1.5; fits 0.5 -1.5
match* 0.3 -1.5; help 0.5 -1.5; helped 1 -1.5; refund* 0 -1.5; reimburs* 0 -1.5; updat* 0 -1.5
told 0 -1.5; inform* 0 -1.5; notif* 0 -1.5; say hello 0 -1.5; said hello 0 -1.5; apolog* 0 -1.5
fix 0 -1.5; resolv* 0 -1.5; solv* 0 -1.5; sort it 0 -1.5; picked up 0 -1.5; available 0 -1.5; valid 0 -1
happen* 0 -1; processed 0 -1.5; credited 0 -1.5; use 0 -1; usable 0 -1.5; worth it 1.5; understand* 0 -1.5
ring 0 -1.5; knock* 0 -1.5; bother* 0 -1.5; tried 0 -1; try 0 -1; explain* 0 -1.5; listen* 0 -1.5
went dead -1.5; cut off -1.5; three times -1; several times -0.7; you get what you pay for -1
move* 0 -1; justif* 0.5 -1.5; solution* 0 -1.5; pay 0 -1.5; placed 0 -1.5; ordered 0 -1.5
after the promised date -1.5; after the expected date -1.5; one department to another -1.5; passed around -1.5
"""

_POLARITY_FR = """
bon 1; bonne 1; bons 1; bonnes 1; bien 1; super 1.5; excellent* 2; parfait* 2; genial* 2; top 1.5; au top 2
impeccable* 2; nickel 2; bravo 2; formidable 2; extra 1.5; magnifique* 2; superbe* 2; beau 1; belle 1; beaux 1
joli* 1; rapide* 1; rapidement 1; vite 1; efficace* 1.5; efficacite 1.5; aimable* 1.5; gentil* 1.5
gentillesse 1.5; amabilite 1.5; sympa* 1.5; agreable* 1; poli 1; polie 1; polis 1; courtois* 1; souriant* 1
accueillant* 1; chaleureu* 1; competent* 1; professionnel* 1; professionnalisme 1; reactif* 1.5
reactivite 1.5; satisfait* 1.5; satisfaction 1.5; content* 1.5; ravi* 2; heureu* 1.5; merci 0.5
recommande 1.5; recommander 1.5; recommanderai 1.5; conseille 1; adore 2; j'adore 2; aime 1; apprecie* 1
adorable* 2; un amour 2; impressionn* 1.5; interessant* 1; solide 1; pratique 1; simple 0.5; simplicite 1
facile* 1; facilement 1; clair* 1; limpide 1; securise* 0.5; attractif* 1; raisonnable* 1; abordable* 1
bon marche 1; moins cher 1; moins chere 1; moins chers 1; imbattable* 1.5; gratuit* 0.5; offert* 0.5
fiable* 1; soigne* 1; ponctuel* 1; rassur* 1; serieu* 1; confortable* 1; qualitatif 1; bien fini 1.5
à temps 1; à l'heure 1; dans les temps 1; dans les delais 0.5; en avance 1; plus tot que prevu 1
à la date prevue 1; à la bonne date 1; le jour meme 1; dans la journee 1; tout de suite 1; immediatement 1
en moins de 1; des le premier 1; du premier coup 1; au premier appel 1; tenu au courant 1
à l'écoute 1; de bon conseil 1; de qualite 1; haut de gamme 1; meilleur* 1.5; mieux 1; correct* 0.2
conforme 0.3; conformes 0.3; ok 0.2; d'accord 0.2; moyen* -0.3; passable -0.3; bof -0.5; mouais -0.5
emojipos 1.5; emojineg -1.5; 5 etoiles 2; cinq etoiles 2; chapeau 1.5; vaut le coup 1.5; vaut la peine 1
resolu 1.5; resolue 1.5; resolus 1.5; corrige 1.5; corrigee 1.5; rectifie 1.5; rectifiee 1.5; repare 1
bluff* 2; aux petits soins 2
mauvais* -1.5; nul -2; nulle -2; nuls -2; decu* -1.5; decevant* -1.5; deception -1.5; mecontent* -1.5
inadmissible -2; inacceptable -2; honte -2; honteu* -2; scandale* -2; scandaleu* -2; lamentable* -2
catastroph* -2; horrible* -2; affreu* -2; pire -2; deplorable* -2; minable -2; pitoyable -2; desastre* -2
penible* -1.5; hautain* -1.5; agressi* -2; impossible -1.5; tourne en rond -1.5; en rond -1
lent -1.5; lente -1.5; lents -1.5; lentes -1.5; lenteur* -1.5; retard -1.5; retards -1.5; en retard -1.5
casse -2; cassee -2; cassees -2; casses -2; abime* -1.5; ecrase* -1.5; endommage* -1.5; defectueu* -2
en morceaux -2; brise* -2; fissure* -1.5; trempe* -1.5; mouille* -1; sous la pluie -1.5; inutilisable -2
lache -1.5; lachent -1.5; a lache -1.5; ont lache -1.5
defaut -1.2; defauts -1.2; raye* -1.5; manquant* -1.5; manque -1.2; manquait -1.5; manquaient -1.5
perdu* -1.5; egare* -1.5; erreur* -1.5; incorrect* -1.5; errone* -1.5; faux -1; fausse -1; a decouvert -1.5
cher -1; chere -1; chers -1; cheres -1; plus cher -1.5; plus chere -1.5; excessif* -1.5; abusif* -1.5
exorbitant* -2; hors de prix -2; augment* -1; hausse* -1
arnaque* -2; voleur* -2; vol -1.5; escroc* -2; desagreable* -1.5; impoli* -2; meprisant* -1.5
arrogant* -1.5; incompetent* -2; incompetence -2; injoignable -2; interminable* -1.5; refus* -1.5
rejete* -1.5; echec -1.5; echoue -1.5; probleme -1.2; problemes -1.2; souci -1.2; soucis -1.2
galere* -1.5; difficulte* -1; complique* -1; compliquee -1; inutile* -1.5; fragile -1; bouloche* -1
froid* -1; sale -1.5; sales -1.5; tache* -1; dechire* -1.5; fuite -1.5; attente -0.7; attendre -0.5
attends -0.5; attendu -0.5; attends encore -1.5; attends toujours -1.5; traine* -1.5; toujours en attente -1.5;
relancer -1.5; relance* -1.5; enerv* -1.5
agac* -1; fache* -1.5; furieu* -2; colere -1.5; degoute* -2; triste -1; dommage -1; helas -1
malheureusement -1; regrette* -1.5; insatisfait* -1.5; mediocre* -1.5; n'importe quoi -2
peine -0.5; confus -1; obscur -1; cache* -1; abuse -1.5; trompe* -1.5; mensonge* -2; menti -2
plainte* -1; reclamation* -0.5; reclamer -0.5; annul* -0.5; bloque* -1.5; coince* -1.5; plante -1.5
bug* -1.5; long -0.5; longue -0.5; longtemps -1; des semaines -1; trop long -1.5; coupe -1; raccroch* -2
derange* -1; script -1; trois fois -1; plusieurs fois -0.7; ai du -0.7; partiel* -1; deux fois -1;
moins cher ailleurs -1.5;
cesse* -1.5; un service a l'autre -1.5; apres la date prevue -1.5; apres la date promise -1.5; il a fallu -0.7;
j'etais chez moi -1; j'etais la -1
ca fait un mois -1.5; ca fait * semaines -1.5; ca fait * jours -1; cela fait * semaines -1.5
depuis un mois -1.5; depuis * semaines -1.5; depuis * jours -1; il est ou -1; ou est mon -1
je resilie -1; je vais resilier -1; svp -0.3; on m'avait promis -0.7; toujours pas -1
le lendemain 1; livre 0 -1.5; livree 0 -1.5; livres 0 -1.5; livrees 0 -1.5; arriv* 0 -1.5; recu 0 -1.5; recue 0 -1.5
recus 0 -1.5; recues 0 -1.5; reception* 0 -1.5; repond* 0 -1.5; reponse* 0 -1.5; rappel* 0 -1.5
nouvelle* 0 -1.5; rembours* 0 -1.5; fonctionne* 0.5 -1.5; marche 0.3 -1.5; passe* 0 -1.5; venu 0 -1.5
aide 0.5 -1.5; aider 0 -1.5; joindre 0 -1.5; joignable 0 -1.5; contact* 0 -1.5; prevenu* 0 -1.5
inform* 0 -1.5; dit bonjour 0 -1.5; excuse* 0 -1.5; regl* 0 -1.5; compren* 0 -1.5; sonne* 0 -1.5
suivi 0 -1; disponible* 0 -1.5; valide* 0 -1; traite* 0 -1.5; utilis* 0 -1; credite* 0 -1.5
correspond* 0.3 -1.5; ressemble* 0.3 -1.5; tenu* 0 -1; respecte* 0.5 -1.5; sert 0 -1.5; servi 0 -1.5
bouge* 0 -1.5; payer 0 -1.5; commande 0 -1; justifi* 0.5 -1.5; solution* 0 -1.5; vaut 0.5 -1.5; adapte* 0.3 -1.5;
ecoute* 0 -1.5; explique* 0 -1.5
"""

# Phrases whose polarity is fixed: never flipped; a negator inside one that is not negative negates nothing
# else ("no problem, fast"), the negator of a negative one reaches on ("not delivered on time").
_FIXED_EN = """
no problem 1.5; no problems 1.5; no issue 1.5; no issues 1.5; not a problem 1.5; no trouble 1.5; no hassle 1.5
no worries 1.5; no complaints 2; no complaint 2; can not complain 1.5; could not complain 1.5; no fuss 1.5
nothing to complain about 2; nothing to complain 2; nothing to fault 2; could not fault 2; can not fault 2
could not be happier 2; could not be better 2; can not recommend enough 2; can not recommend highly enough 2
not bad 1; not bad at all 1.5; not too bad 0.7; never had a problem 2; never had any problem* 2
never had an issue 2; never had any issue* 2; never disappoint* 2; never fails 1.5; hassle free 1.5
hassle-free 1.5; without a hitch 1.5; without any problem* 1.5; without any issue* 1.5; without problem* 1.5
no questions asked 1; in three instalments 0; in instalments 0; never had a * issue 2; never had a * problem 2;
never had any * issue* 2
no * issues 1.5; no * problems 1.5; never had any * problem* 2; before i even 1.5; order again 1.5;
ordering again 1.5; buy again 1.5; shop again 1.5
use again 1; come back again 1.5; again and again 1
would like 0; d like 0; looks like 0; look like 0; feel like 0; feels like 0; seems like 0; just like 0
as well 0; kind of 0; would be nice 0; would be good 0; would be great 0; would be better 0; would be handy 0
would love 0; would help 0; could you 0; please add 0
cheap quality -1.5; feels cheap -1.5; looks cheap -1.5; cheap plastic -1.5; not the same -1; after i cancelled -1.5
after cancelling -1.5; after cancellation -1.5; even though i cancelled -1.5; despite cancelling -1.5
i want it back -1.5; want my money back -1.5; i want a refund -1; from a script -1.5
nothing to report 0; nothing special 0; nothing to say 0
not sure 0; not yet 0; no idea 0; nothing more -0.5; nothing else 0; not used it yet 0; not tried it yet 0
never again -2; never ever again -2; not good enough -1.5; not great -1; not the best -1; no good -1.5
not happy -1.5; not impressed -1.5; not satisfied -1.5; not recommend -1.5; not worth it -1.5; not worth -1.5
would not recommend -2; do not recommend -2; wouldnt recommend -2; no one answers -2; no one answered -2
nobody answers -2; nobody answered -2; no answer -1.5; no reply -1.5; no response -1.5; no help -1.5
no refund -1.5; no longer works -2; no longer working -2; stopped working -2; does not work -2
did not work -2; not working -2; nothing like -1.5; not as described -1.5; not as advertised -1.5
no sign of -1.5; nowhere to be seen -1.5; no one to help -1.5; not fit for purpose -2; never arrived -2
never received -2; never came -2; never showed up -2; never got -1.5; not delivered -1.5; not received -1.5
not on time -1.5; no news -1.5; no update* -1.5; no way to -1.5; no one got back -2; nobody got back -2
"""

_FIXED_FR = """
aucun souci 1.5; aucun soucis 1.5; aucun probleme 1.5; aucuns problemes 1.5; pas de souci 1.5
pas de soucis 1.5; pas de probleme 1.5; pas de problemes 1.5; sans souci 1.5; sans soucis 1.5
sans probleme 1.5; sans problemes 1.5; sans aucun souci 1.5; sans aucun probleme 1.5; sans encombre 1.5
rien a redire 2; rien a reprocher 2; aucun reproche 2; que des eloges 2; que du bonheur 2; sans chichi* 1.5
ne que des eloges 2; ne que du bonheur 2; pas mal 1; pas mal du tout 1.5; ne jamais decu 2; jamais decu 2
pas decu 1.5; ne pas decu 1.5; ne pas ete decu 1.5; ne jamais eu de probleme* 2; aucune plainte 1.5
jamais eu de probleme* 2; jamais eu de souci* 2; ne jamais eu de souci* 2; aucune difficulte 1.5
jamais eu le moindre probleme 2; jamais eu le moindre souci 2; pas de plainte 1.5; aucune reclamation 1.5
sans difficulte 1.5; sans aucune difficulte 1.5; sans discuter 1; avant meme 1.5; en deux fois 0; en 2 fois 0;
en trois fois 0; en 3 fois 0
en plusieurs fois 0; en quatre fois 0; en 4 fois 0
rien a signaler 0; ras 0; sans plus -0.5; pas plus 0
rien de particulier 0; rien d'exceptionnel 0
pas encore 0; ni bien ni mal 0; sans avis 0; pas d'avis 0; je ne sais pas 0; rien a ajouter 0
ce serait 0; ce serait bien 0; ce serait mieux 0; ce serait pratique 0; ce serait top 0; ce serait super 0
ce serait genial 0; serait bien 0; serait mieux 0; serait pratique 0; serait top 0; il faudrait 0; j'aimerais 0
pourriez-vous 0; pourriez vous 0
plus jamais -2; jamais plus -2; ne plus jamais -2; pas terrible -1.5; ne pas terrible -1.5; pas top -1.5
ne pas top -1.5; pas genial -1; ne pas genial -1; rien ne va -2
ne sert a rien -2; sert a rien -2; ne recommande pas -2; pas satisfait -1.5; ne pas satisfait -1.5
pas content -1.5; ne pas content -1.5; pas au niveau -1.5; ne pas au niveau -1.5; pas conforme -1.5
ne pas conforme -1.5; non conforme -1.5; ne pas a la hauteur -1.5; pas a la hauteur -1.5
toujours rien -1.5; aucune reponse -1.5; pas de reponse -1.5; sans reponse -1.5
aucune nouvelle* -1.5; pas de nouvelle* -1.5; sans nouvelle* -1.5; jamais recu -2; jamais arrive* -2
ne jamais recu -2; ne jamais arrive* -2; pas livre* -1.5; pas recu* -1.5; ne pas recu* -1.5
ne pas livre* -1.5; ne toujours pas -1; personne ne repond -2; personne ne decroche -2
ne plus fonctionne* -2; ne plus marche -2; ne fonctionne* pas -2; ne marche pas -2; ne marche plus -2
ne fonctionne* plus -2; ne ressemble pas -1.5; ne correspond pas -1.5; ne correspond* pas -1.5
ne plus la meme -1; ne plus le meme -1; pas la meme -1; pas le meme -1
alors que j'ai resilie -1.5; malgre ma resiliation -1.5; apres ma resiliation -1.5; apres avoir resilie -1.5
je veux etre rembourse* -1.5; je veux mon argent -1.5; je veux un remboursement -1
"""

_NEGATORS = {
    "en": {"not", "no", "never", "nobody", "nothing", "none", "neither", "nor", "without", "hardly", "barely",
           "cannot", "lack", "lacking", "zero", "dont", "didnt", "doesnt", "isnt", "wasnt", "arent", "werent",
           "cant", "couldnt", "wont", "wouldnt", "shouldnt", "havent", "hasnt", "hadnt", "aint", "nowhere"},
    "fr": {"pas", "jamais", "aucun", "aucune", "aucuns", "aucunes", "rien", "sans", "ni", "non", "personne",
           "nullement", "guere"},
}
_NE_PARTNERS = {"pas", "plus", "jamais", "rien", "personne", "aucun", "aucune", "guere", "nullement", "point"}
_INTENSIFIERS = {
    "en": {"very", "really", "so", "extremely", "super", "totally", "completely", "absolutely", "incredibly",
           "highly", "truly", "such", "utterly", "exceptionally", "amazingly", "particularly", "most", "seriously",
           "especially", "awfully", "terribly", "way", "far"},
    "fr": {"tres", "vraiment", "super", "hyper", "tellement", "extremement", "completement", "totalement",
           "absolument", "vachement", "particulierement", "si", "hautement", "fort", "archi", "ultra",
           "franchement", "carrement", "bien"},
}
_DIMINISHERS = {"en": {"bit", "slightly", "somewhat", "little", "fairly", "rather", "kinda", "enough"},
                "fr": {"peu", "legerement", "assez", "plutot", "relativement"}}
_TOO = {"en": {"too"}, "fr": {"trop"}}
_CONTRAST = {"en": {"but", "however", "whereas", "nevertheless", "nonetheless", "except", "apart", "otherwise"},
             "fr": {"mais", "cependant", "pourtant", "toutefois", "neanmoins", "sauf", "hormis", "revanche",
                    "contre", "sinon"}}
_EXCEPT = {"except", "apart", "sauf", "hormis"}
_CONCESSION = {"en": {"although", "though", "despite", "spite", "while", "whilst", "even"},
               "fr": {"malgre", "quoique", "bien que", "meme si"}}
_AND = {"en": {"and", "also", "plus", "then"}, "fr": {"et", "puis", "ensuite", "egalement"}}
# a complaint word that a resolution word in the same clause settles ("billing mistake corrected")
_PROBLEMS = {"problem", "problems", "issue", "issues", "mistake", "mistakes", "error", "errors", "trouble",
             "probleme", "problemes", "souci", "soucis", "erreur", "erreurs"}
_RESOLUTIONS = re.compile(r"(resolved|fixed|sorted|solved|corrected|rectified|repaired|regle|resolu|corrige|rectifie"
                          r"|repare)[es]{0,2}")
# words a negation window passes over without counting them
_FILLERS = {
    "en": {"the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "this", "that", "these", "those",
           "at", "all", "even", "ever", "been", "be", "was", "is", "are", "were", "it", "any", "one", "single",
           "yet", "still", "really", "very", "so", "too", "have", "has", "had", "did", "do", "does", "got", "get",
           "me", "us", "them", "of", "much", "always", "quite", "by", "to", "for", "i", "we", "you", "they",
           "whatsoever", "just", "once"},
    "fr": {"le", "la", "les", "un", "une", "des", "du", "de", "mon", "ma", "mes", "ton", "ta", "tes", "son", "sa",
           "ses", "notre", "nos", "votre", "vos", "leur", "leurs", "ce", "cet", "cette", "ces", "tout", "toute",
           "meme", "encore", "toujours", "vraiment", "tres", "trop", "si", "ete", "est", "etait", "a", "ai", "as",
           "avons", "avez", "ont", "avait", "eu", "me", "te", "se", "nous", "vous", "lui", "y", "en",
           "je", "il", "elle", "on", "ils", "elles", "jamais", "plus", "au", "aux", "bien", "fait",
           "etre", "avoir", "suis", "sont", "sera", "serait", "fut", "ca", "cela", "dans", "par", "moindre"},
}
_STOP = {
    "en": {"the", "a", "an", "and", "is", "was", "are", "were", "i", "my", "me", "it", "to", "of", "for",
           "with", "but", "very", "this", "that", "have", "has", "had", "not", "on", "in", "at", "you", "your",
           "they", "we", "be", "been", "so", "would", "will", "again", "did", "do", "does", "after", "from",
           "thanks", "thank", "great", "good", "order", "item", "delivery", "service", "customer", "no", "all",
           "still", "when", "what", "which", "there", "their", "our", "just", "got", "get", "too", "really",
           "since", "already", "also", "yet", "fine", "ok", "okay", "perfect", "terrible", "awful"},
    "fr": {"le", "la", "les", "un", "une", "des", "du", "de", "et", "est", "pas", "je", "il", "elle", "on",
           "tres", "mais", "pour", "avec", "ne", "sur", "au", "aux", "mon", "ma", "mes", "que", "qui", "en",
           "ai", "ete", "etait", "tout", "sans", "rien", "plus", "bien", "merci", "colis", "livraison", "commande",
           "produit", "ce", "cette", "votre", "vous", "nous", "service", "client", "jamais", "toujours", "ca",
           "suis", "sont", "par", "dans", "y", "se", "son", "sa", "ses", "leur", "encore", "vraiment", "trop",
           "depuis", "fois", "chez", "apres", "avant", "deja", "comme", "aussi", "ras", "nul", "parfait"},
}
_EMOJI_POS = ("\U0001f44d", "\U0001f44c", "\U0001f60a", "\U0001f600", "\U0001f603", "\U0001f604", "\U0001f601",
              "\U0001f642", "\u2764", "\U0001f495", "\U0001f496", "\U0001f60d", "\U0001f64f", "\u2b50",
              "\U0001f31f", "\U0001f44f", "\U0001f389", "\U0001f970", ":)", ":-)", ":d", "<3", ";)")
_EMOJI_NEG = ("\U0001f44e", "\U0001f621", "\U0001f620", "\U0001f61e", "\U0001f622", "\U0001f62d", "\U0001f612",
              "\U0001f615", "\U0001f92c", "\U0001f624", "\U0001f641", "\U0001f92e", "\U0001f4a9", ":(", ":-(",
              ":'(")


# ---- lexicon compilation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cue:
    tokens: tuple[str, ...]  # a trailing '*': prefix; '*' alone: any word
    value: Any  # topic cues: ((topic, weak), ...); polarity cues: (weight, negated weight or None)


class _Matcher:
    """Longest-first matching of multi-word cues, exact or by prefix, indexed by their first word."""

    def __init__(self, cues: list[_Cue]) -> None:
        self.exact: dict[str, list[_Cue]] = {}
        self.prefix: dict[str, list[tuple[str, _Cue]]] = {}
        for cue in sorted(cues, key=lambda c: -len(c.tokens)):
            first = cue.tokens[0]
            if first.endswith("*"):
                stem = first[:-1]
                self.prefix.setdefault(stem[:3], []).append((stem, cue))
            else:
                self.exact.setdefault(first, []).append(cue)

    @staticmethod
    def _fits(cue: _Cue, words: list[str], i: int) -> bool:
        if i + len(cue.tokens) > len(words):
            return False
        for j, p in enumerate(cue.tokens[1:], 1):
            w = words[i + j]
            if not (w.startswith(p[:-1]) if p.endswith("*") else w == p):
                return False
        return True

    def at(self, words: list[str], i: int) -> _Cue | None:
        """The longest cue starting at word ``i`` (None: none)."""
        best: _Cue | None = None
        w = words[i]
        for cue in self.exact.get(w, ()):
            if self._fits(cue, words, i):
                best = cue
                break
        for stem, cue in self.prefix.get(w[:3], ()):
            if (w.startswith(stem) and (best is None or len(cue.tokens) > len(best.tokens))
                    and self._fits(cue, words, i)):
                best = cue
        return best


def _cue_tokens(cue: str, language: str) -> tuple[str, ...]:
    """A lexicon cue as the words of a text (same normalisation and tokenisation); a trailing '*' on a word
    makes its last token a prefix, a lone '*' matches any one word (never first)."""
    out: list[str] = []
    for piece in cue.split():
        if piece == "*":
            out.append("*")
            continue
        tokens = _tokenise(normalise(piece.rstrip("*")), language)
        if piece.endswith("*") and tokens:
            tokens[-1] += "*"
        out += tokens
    if out and out[0] == "*":
        raise ValueError(f"a cue cannot start with a wildcard: {cue!r}")
    return tuple(out)


def _parse_weights(text: str, language: str) -> list[_Cue]:
    cues = []
    for line in text.strip().splitlines():
        for entry in line.split(";"):
            parts = entry.split()
            if not parts:
                continue
            nums: list[float] = []
            while len(parts) > 1 and len(nums) < 2 and re.fullmatch(r"-?\d+(\.\d+)?", parts[-1]):
                nums.insert(0, float(parts.pop()))
            if not nums:
                raise ValueError(f"lexicon entry without a weight: {entry!r}")
            cues.append(_Cue(_cue_tokens(" ".join(parts), language), (nums[0], nums[1] if len(nums) > 1 else None)))
    return cues


def _parse_topics(text: str, language: str) -> list[_Cue]:
    merged: dict[tuple[str, ...], dict[str, bool]] = {}
    for block in re.split(r"\n(?=\w+:)", text.strip()):
        topic, _, body = block.partition(":")
        topic = topic.strip()
        if topic not in TOPICS:
            raise ValueError(f"unknown topic in the lexicon: {topic!r}")
        for raw in body.split(","):
            raw = raw.strip()
            weak = raw.startswith("~")
            tokens = _cue_tokens(raw.lstrip("~"), language)
            if tokens:
                slot = merged.setdefault(tokens, {})
                slot[topic] = slot.get(topic, True) and weak  # strong wins when listed twice
    return [_Cue(tokens, tuple(sorted(topics.items()))) for tokens, topics in merged.items()]


# ---- normalisation and tokens --------------------------------------------------------------------------------
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u02bc": "'",
                              "\u00ab": '"', "\u00bb": '"', "\u201c": '"', "\u201d": '"', "\u0153": "oe",
                              "\u00e6": "ae", "\u00df": "ss", "\u2026": "...", "\u20ac": " eur ", "\u00a3": " gbp ",
                              "$": " usd ", "\u00a0": " ", "\u202f": " "})
_FR_ELISION = re.compile(r"\b(qu|jusqu|lorsqu|puisqu|quoiqu|[cdjlmnst])'")
_EN_NT = re.compile(r"n't\b")
_TOKEN = re.compile(r"[a-z0-9]+|[!?.;:,]+")
_MARK = re.compile(r"(?<![\d/])(\d{1,2}(?:[.,]\d)?)\s*/\s*(5|10|20)(?![\d/])")


def _mark(m: re.Match) -> str:
    """'9/10' -> a positive word, '3/10' a negative one, a middling mark nothing."""
    share = float(m.group(1).replace(",", ".")) / float(m.group(2))
    return " emojipos " if share >= 0.7 else " emojineg " if share <= 0.4 else " "


def normalise(text: str) -> str:
    """Lower case, plain apostrophes and quotes, accents stripped, emoticons and marks as words, runs of
    punctuation collapsed to two marks at most ("!!!" -> "!!": a strong exclamation)."""
    s = text.lower()
    for e in _EMOJI_POS:
        s = s.replace(e, " emojipos ")
    for e in _EMOJI_NEG:
        s = s.replace(e, " emojineg ")
    s = _MARK.sub(_mark, s.translate(_APOSTROPHES))
    s = "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))
    s = re.sub(r"([!?.,;:])\1{2,}", r"\1\1", s)
    return re.sub(r"\s+", " ", s).strip()


def _tokenise(norm: str, language: str) -> list[str]:
    s = norm
    if language == "fr":
        s = _FR_ELISION.sub(lambda m: m.group(1) + ("" if m.group(1).endswith("e") else "e") + " ", s)
        s = s.replace("aujourd'hui", "aujourdhui")
    else:
        s = s.replace("can't", "can not").replace("won't", "will not").replace("shan't", "shall not")
        s = _EN_NT.sub(" not", s).replace("cannot", "can not")
    return _TOKEN.findall(s.replace("'", " "))


# French evidence: an elision, or a letter with a French accent (à â ç è é ê ë î ï ô ù û œ)
_FR_MARKS = re.compile(r"\b(?:qu|[cdjlmnst])'\w|[\u00e0\u00e2\u00e7\u00e8-\u00eb\u00ee\u00ef\u00f4\u00f9\u00fb\u0153]")


def detect_language(text: str | None) -> str | None:
    """'fr' or 'en' by counts of each language's stop words (French elisions and accented letters count
    for French); None when they tie (no words, or as many of each)."""
    if not text:
        return None
    norm = normalise(text)
    words = _TOKEN.findall(norm.replace("'", " "))
    fr = sum(w in _STOP["fr"] for w in words) + len(_FR_MARKS.findall(text.lower().translate(_APOSTROPHES)))
    en = sum(w in _STOP["en"] for w in words)
    return "fr" if fr > en else "en" if en > fr else None


class _Lexicon:
    def __init__(self, language: str, topics: str, polarity: str, fixed: str) -> None:
        self.language = language
        self.topics = _Matcher(_parse_topics(topics, language))
        self.polarity = _Matcher(_parse_weights(polarity, language))
        self.fixed = _Matcher(_parse_weights(fixed, language))
        self.negators = _NEGATORS[language]
        self.intensifiers = _INTENSIFIERS[language]
        self.diminishers = _DIMINISHERS[language]
        self.too = _TOO[language]
        self.contrast = _CONTRAST[language]
        self.concession = _CONCESSION[language]
        self.conj = _AND[language]
        self.fillers = _FILLERS[language]


_LEXICONS = {"en": _Lexicon("en", _TOPICS_EN, _POLARITY_EN, _FIXED_EN),
             "fr": _Lexicon("fr", _TOPICS_FR, _POLARITY_FR, _FIXED_FR)}


# ---- the tagger ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tagged:
    topics: tuple[str, ...]  # sorted
    topic_polarity: tuple[tuple[str, str], ...]  # (topic, polarity), sorted by topic
    polarity: str
    language: str | None = None  # the lexicon used: the given language, else the detected one
    score: float = 0.0  # the weighted sum behind ``polarity``

    def polarity_of(self, topic: str) -> str | None:
        return dict(self.topic_polarity).get(topic)


@dataclass(eq=False)
class _Segment:
    """A clause: words start..end (exclusive) between boundaries."""

    start: int
    end: int
    sentence: int
    weight: float = 1.0
    pos: float = 0.0
    neg: float = 0.0
    cues: int = 0
    excepted: bool = False  # introduced by "except"/"sauf"
    strong: set[str] = field(default_factory=set)  # topics of its strong cues

    @property
    def score(self) -> float:
        return self.pos - self.neg


def _band(score: float) -> str:
    return "positive" if score >= NEUTRAL_BAND else "negative" if score <= -NEUTRAL_BAND else "neutral"


def _segments(words: list[str], lex: _Lexicon) -> tuple[list[_Segment], list[bool]]:
    """Clauses (split at punctuation, "and"/"et", contrast and concession words) with their weights, and
    which words are boundaries."""
    n = len(words)
    boundary = [False] * n
    segs: list[_Segment] = []
    state = {"start": 0, "sentence": 0, "after_contrast": False, "concession": False, "excepted": False}
    since_contrast: list[_Segment] = []  # the clauses a coming contrast word damps

    def close(end: int) -> None:
        if end > state["start"]:
            seg = _Segment(state["start"], end, state["sentence"])
            seg.weight *= (AFTER_CONTRAST if state["after_contrast"] else 1.0) * (
                CONCESSION if state["concession"] else 1.0)
            seg.excepted = state["excepted"]
            segs.append(seg)
            since_contrast.append(seg)
        state["start"] = end + 1

    for i, w in enumerate(words):
        prev = words[i - 1] if i else ""
        nxt = words[i + 1] if i + 1 < n else ""
        if w[0] in "!?.;:,":
            boundary[i] = True
            close(i)
            if w[0] in "!?.;":
                if "!" in w:
                    factor = STRONG_EXCLAMATION if len(w) > 1 else EXCLAMATION
                    for seg in segs:
                        if seg.sentence == state["sentence"]:
                            seg.weight *= factor
                state["sentence"] += 1
                state["after_contrast"] = False
            state["concession"] = state["excepted"] = False
        elif w in lex.contrast and not (
                (w == "contre" and prev != "par") or (w == "revanche" and prev != "en")
                or (w == "apart" and nxt != "from") or (w == "sinon" and i > 0 and prev not in (",", "."))):
            boundary[i] = True
            close(i)
            for seg in since_contrast:
                seg.weight *= BEFORE_CONTRAST
            since_contrast.clear()
            state["sentence"] += 1
            state["after_contrast"] = True
            state["concession"] = False
            state["excepted"] = w in _EXCEPT
        elif (w in lex.concession or f"{w} {nxt}" in lex.concession) and not (
                (w == "even" and nxt not in ("though", "if")) or (w in ("while", "whilst") and i > 0)):
            boundary[i] = True
            close(i)
            state["concession"] = True
        elif w in lex.conj:
            boundary[i] = True
            close(i)
    close(n)
    return segs, boundary


def _negation(words: list[str], lex: _Lexicon, settled: set[int], boundary: list[bool]) -> list[int]:
    """Per word: 0 not negated, 1 the word a negator governs (its first content word), 2 negated further on.

    A negator reaches NEGATION_WINDOW content words after it, within its clause; French "ne" reaches the
    words up to its "pas"/"jamais"/"plus"/"rien"/..., and past it only when nothing but auxiliaries and
    pronouns stand between them ("n'est pas arrivé", but "ne comprenait rien à mon problème"). A negator
    inside a settled fixed phrase ("no problem") reaches nothing."""
    n = len(words)
    neg = [0] * n

    def window(i: int) -> None:
        counted, j = 0, i + 1
        while j < n and counted < NEGATION_WINDOW and not boundary[j]:
            content = words[j] not in lex.fillers and words[j] not in lex.negators
            neg[j] = 1 if content and counted == 0 else (neg[j] or 2)  # the nearest negator governs
            counted += content
            j += 1

    partners: set[int] = set()  # the "pas"/"rien"/... of a "ne": negators through it, not on their own
    for i, w in enumerate(words):
        if i in settled or boundary[i] or i in partners:
            continue
        if lex.language == "fr" and w == "ne":
            partner = None
            for j in range(i + 1, min(n, i + 6)):
                if boundary[j]:
                    break
                if words[j] in _NE_PARTNERS or words[j] == "que":
                    partner = j
                    break
            if partner is None:
                window(i)
            elif words[partner] != "que":  # "ne ... que": only, not a negation
                partners.add(partner)
                between = range(i + 1, partner)
                first = next((j for j in between if words[j] not in lex.fillers), None)
                for j in between:
                    neg[j] = neg[j] or (1 if j == first else 2)
                if first is None:
                    window(partner)
        elif w in lex.negators:
            if lex.language == "fr" and w == "personne" and words[i - 1:i] and words[i - 1] in (
                    "la", "une", "cette", "le"):
                continue  # "la personne": someone, not nobody
            window(i)
    return neg


def _analyse(text: str, lex: _Lexicon) -> tuple[Tagged, int]:
    words = _tokenise(normalise(text), lex.language)
    if not words:
        return Tagged((), (), "neutral", lex.language, 0.0), 0
    n = len(words)
    segs, boundary = _segments(words, lex)
    seg_of: list[_Segment | None] = [None] * n
    for s in segs:
        for j in range(s.start, s.end):
            seg_of[j] = s

    def clause(i: int) -> _Segment | None:
        """The clause of word i (a boundary word: the clause it closes)."""
        if seg_of[i] is not None:
            return seg_of[i]
        return next((s for s in reversed(segs) if s.end <= i), segs[0] if segs else None)

    # 1. fixed phrases
    consumed: set[int] = set()
    settled: set[int] = set()
    cues: list[tuple[int, float]] = []  # (word, weight)
    i = 0
    while i < n:
        cue = lex.fixed.at(words, i)
        if cue is None:
            i += 1
            continue
        span = range(i, i + len(cue.tokens))
        consumed.update(span)
        if cue.value[0] >= 0:
            settled.update(span)
        if cue.value[0]:
            cues.append((i, cue.value[0]))
        i += len(cue.tokens)
    neg = _negation(words, lex, settled, boundary)
    # 2. topics (not inside a settled phrase: "no complaints" is no support topic)
    found: list[tuple[int, str, bool]] = []
    i = 0
    while i < n:
        cue = None if i in settled else lex.topics.at(words, i)
        if cue is None:
            i += 1
            continue
        for topic, weak in cue.value:
            found.append((i, topic, weak))
            if not weak and clause(i) is not None:
                clause(i).strong.add(topic)
        i += len(cue.tokens)
    # 3. polarity cues
    resolved = {id(clause(j)) for j, w in enumerate(words)
                if _RESOLUTIONS.fullmatch(w) and not neg[j] and clause(j) is not None}
    problems = {id(clause(j)) for j, w in enumerate(words) if w in _PROBLEMS and clause(j) is not None}
    i = 0
    while i < n:
        w = words[i]
        if i in consumed or boundary[i]:
            i += 1
            continue
        if w.startswith("?") or w == "??":
            i += 1
            continue
        cue = lex.polarity.at(words, i)
        modifier = w in lex.intensifiers or w in lex.too
        nxt = lex.polarity.at(words, i + 1) if i + 1 < n else None
        if cue is not None and modifier and i + 1 < n and (
                (nxt is not None and nxt.value[0] != 0) or words[i + 1] in lex.intensifiers
                or words[i + 1] in lex.too):
            cue = None  # "super rapide", "bien trop cher": the word modifies the next one
        if cue is None:
            if (w in lex.too and i + 1 < n and not boundary[i + 1] and words[i + 1] not in lex.fillers
                    and nxt is None and i + 1 not in consumed):
                cues.append((i, TOO_WEIGHT))  # "trop long"
            i += 1
            continue
        weight, negated = cue.value
        seg = clause(i)
        if w in _PROBLEMS and seg is not None and id(seg) in resolved:
            i += len(cue.tokens)  # "mistake corrected": no complaint
            continue
        if _RESOLUTIONS.fullmatch(w) and not neg[i] and seg is not None and id(seg) in problems:
            weight = max(weight, RESOLVED_WEIGHT)
        if neg[i]:
            if negated is not None:
                weight = negated
            elif weight > 0:
                weight = -weight
            elif neg[i] == 1:
                weight = -NEGATED_NEGATIVE * weight
        if weight == 0:
            i += len(cue.tokens)
            continue
        mult = 1.0
        for j in (i - 1, i - 2):
            if j < 0 or boundary[j]:
                break
            if words[j] in lex.intensifiers or words[j] in lex.too:
                mult = INTENSIFY
                break
            if words[j] in lex.diminishers:
                mult = DIMINISH
                break
        cues.append((i, weight * mult))
        i += len(cue.tokens)
    for i, w in enumerate(words):
        if boundary[i] and "??" in w:
            cues.append((i, STRONG_QUESTION))
    # 4. clause scores
    for i, wgt in cues:
        s = clause(i)
        if s is None:
            continue
        if wgt > 0:
            s.pos += wgt
        else:
            s.neg -= wgt
        s.cues += 1
    for s in segs:
        if s.excepted and s.cues == 0:
            s.neg, s.cues = -EXCEPT_WEIGHT, 1
    pos = sum(s.pos * s.weight for s in segs)
    negs = sum(s.neg * s.weight for s in segs)
    total = pos - negs
    if pos >= NEUTRAL_BAND and negs >= NEUTRAL_BAND and max(pos, negs) < MIXED_RATIO * min(pos, negs):
        overall = "neutral"  # mixed, neither side dominating
    else:
        overall = _band(total)
    # 5. topics and their polarity: a weak cue counts unless its clause holds a strong cue of another topic,
    # or a cue of another topic that is strong somewhere in the comment ("returned the item ... no refund")
    clauses_of: dict[str, list[_Segment]] = {}
    strong_anywhere = {t for _, t, weak in found if not weak}
    for i, topic, weak in found:
        s = clause(i)
        if weak and s is not None:
            beside = {t for j, t, _ in found if clause(j) is s} - {topic}
            if s.strong - {topic} or beside & strong_anywhere:
                continue
        lst = clauses_of.setdefault(topic, [])
        if s is not None and s not in lst:
            lst.append(s)
    pairs = []
    for topic, ss in sorted(clauses_of.items()):
        if any(s.cues for s in ss):
            score = sum(s.score for s in ss)
        else:
            sentences = {s.sentence for s in ss}
            same = [s for s in segs if s.sentence in sentences and s.cues]
            score = sum(s.score for s in same) if same else total if len(clauses_of) == 1 else 0.0
        pairs.append((topic, _band(score)))
    tagged = Tagged(tuple(t for t, _ in pairs), tuple(pairs), overall, lex.language, round(total, 4))
    return tagged, len(consumed) + len(cues) + len(found)


def tag(text: str | None, language: str | None = None) -> Tagged:
    """The topics of a comment, each topic's polarity and the comment's (see the module's docstring).

    ``language``: 'fr' or 'en' (a region suffix such as 'fr-FR' is fine); anything else or None: detected
    from the text. None or blank text: no topic, neutral."""
    if text is None or not str(text).strip():
        return Tagged((), (), "neutral", _lang(language), 0.0)
    text = str(text)
    lang = _lang(language) or detect_language(text)
    if lang is not None:
        return _analyse(text, _LEXICONS[lang])[0]
    # no language given nor detected: the lexicon that recognises more (English on a tie)
    return max((_analyse(text, _LEXICONS[code]) for code in LANGUAGES), key=lambda r: r[1])[0]


def _lang(language: str | None) -> str | None:
    if not language:
        return None
    code = str(language).strip().lower()[:2]
    return code if code in _LEXICONS else None


# ---- evaluation -------------------------------------------------------------------------------------------------
def _split_topics(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {t.strip() for t in value.split(";") if t.strip()}
    return {str(t) for t in value}


def f1_figures(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    """Precision, recall and F1 of one class from its true positives, false positives and false negatives."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "support": tp + fn, "predicted": tp + fp}


def macro_f1(per_class: Mapping[str, Mapping[str, float | int]]) -> float | None:
    """Mean F1 over the classes that occur (in the labels or the predictions); None when none does."""
    present = [c["f1"] for c in per_class.values() if c["support"] or c["predicted"]]
    return round(sum(present) / len(present), 4) if present else None


def score_labels(pairs: Iterable[tuple[set[str], str, set[str], str]]) -> dict[str, Any]:
    """Topic and polarity F1 of (gold topics, gold polarity, predicted topics, predicted polarity) pairs."""
    topic_counts = {t: [0, 0, 0] for t in TOPICS}
    pol_counts = {p: [0, 0, 0] for p in POLARITIES}
    n = 0
    for gold, want, pred, got in pairs:
        n += 1
        for t in TOPICS:
            if t in gold or t in pred:
                topic_counts[t][0 if t in gold and t in pred else 1 if t in pred else 2] += 1
        for p in POLARITIES:
            if want == p or got == p:
                pol_counts[p][0 if want == p and got == p else 1 if got == p else 2] += 1
    topics = {t: f1_figures(*c) for t, c in topic_counts.items()}
    polarity = {p: f1_figures(*c) for p, c in pol_counts.items()}
    return {"n": n, "topic_macro_f1": macro_f1(topics), "polarity_macro_f1": macro_f1(polarity),
            "topics": topics, "polarity": polarity}


def evaluate(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Score ``tag`` on labelled rows (keys language, text, topics (';'-separated or a list), polarity;
    id optional), per language.

    Topic macro-F1 is multi-label: a binary F1 per topic, averaged over the topics that occur in the
    labels or the predictions; polarity macro-F1 is a F1 per polarity class, averaged likewise. With the
    per-class precision, recall, F1, support and predicted counts, and the misses (every row whose topic
    set or polarity is wrong, with what was predicted)."""
    by_lang: dict[str, list[tuple[Mapping[str, Any], Tagged]]] = {}
    for row in rows:
        lang = _lang(row.get("language")) or str(row.get("language") or "unknown")
        by_lang.setdefault(lang, []).append((row, tag(row.get("text"), row.get("language"))))
    out: dict[str, dict[str, Any]] = {}
    for lang, items in sorted(by_lang.items()):
        labelled = [(_split_topics(row.get("topics")), str(row.get("polarity") or "").strip(), set(got.topics),
                     got.polarity) for row, got in items]
        out[lang] = score_labels(labelled)
        out[lang]["misses"] = [
            {"id": row.get("id"), "text": row.get("text"), "topics": sorted(gold), "polarity": want,
             "predicted_topics": list(got.topics), "predicted_polarity": got.polarity, "score": got.score}
            for (row, got), (gold, want, pred, _) in zip(items, labelled, strict=True)
            if gold != pred or want != got.polarity]
    return out


def read_labelled(path: str | Path) -> list[dict[str, str]]:
    """Rows of a labelled comments CSV (id, language, text, topics, polarity), as ``evaluate`` takes them."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def tag_frame(df: Any, text: str = "comment", language: str = "language") -> Any:
    """A polars frame with the tags of its comments added: comment_topics (';'-separated, sorted; empty:
    none), comment_polarity and comment_topic_polarity ('delivery:negative;price:positive'). Imports
    polars only when called."""
    import polars as pl

    tags = [tag(t, lang) for t, lang in zip(df[text].to_list(), df[language].to_list(), strict=True)]
    return df.with_columns(
        pl.Series("comment_topics", [";".join(t.topics) for t in tags], dtype=pl.Utf8),
        pl.Series("comment_polarity", [t.polarity for t in tags], dtype=pl.Utf8),
        pl.Series("comment_topic_polarity", [";".join(f"{a}:{b}" for a, b in t.topic_polarity) for t in tags],
                  dtype=pl.Utf8),
    )
