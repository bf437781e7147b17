"""What the console says, in French: the service's codes (statuses, outcomes, error and reason codes)
as a call handler reads them. The codes stay the API's; only their wording lives here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from service import french
from service.connectors.schemas import FhirSourceOut

ROLES = {
    "handler": "Opérateur de soins non programmés",
    "regulator": "Médecin régulateur",
    "coordinator": "Coordination",
    "admin": "Administration",
}
STATUSES = {
    "open": "À orienter",
    "transfer_required": "Signe de gravité : transfert au 15",
    "booked": "Rendez-vous pris",
    "closed": "Clôturée",
}
MODALITIES = {"AMB": "Au cabinet", "VR": "Téléconsultation", "HH": "Visite à domicile"}
CHANNELS = {
    "phone": "Téléphone",
    "sas": "SAS",
    "pharmacy": "Pharmacie",
    "professional": "Professionnel",
    "other": "Autre",
}
RELATIONS = {
    "self": "Le patient lui-même",
    "parent": "Parent",
    "relative": "Proche",
    "carer": "Aidant",
    "professional": "Professionnel de santé",
    "other": "Autre",
}
IDENTITY_STATUSES = {
    "PROV": "Provisoire",
    "VALI": "Validée (pièce d'identité)",
    "RECUP": "Récupérée (INSi)",
    "QUAL": "Qualifiée (INS)",
}
SEXES = {"F": "Féminin", "M": "Masculin", "U": "Inconnu"}
OUTCOMES = {
    "booked": "Rendez-vous pris",
    "transfer_15": "Orienté vers le 15",
    "emergency_department": "Orienté vers les urgences",
    "advice": "Conseil donné",
    "pharmacy": "Orienté vers une pharmacie",
    "own_gp": "Renvoyé vers son médecin traitant",
    "no_solution": "Aucune solution trouvée",
    "patient_declined": "Le patient a refusé",
    "unreachable": "Patient injoignable",
    "duplicate": "Doublon d'une autre demande",
    "reopened": "Rouverte (rendez-vous annulé)",
    "red_flag_override": "Signe de gravité levé par un régulateur",
}
# The outcomes a handler records by hand, in the order offered (booked comes from a booking).
OTHER_OUTCOMES = ("advice", "pharmacy", "own_gp", "no_solution", "patient_declined", "unreachable", "duplicate")
RED_FLAG_OUTCOMES = ("transfer_15", "emergency_department")
BOOKING_STATUSES = {
    "held": "Réservé (en attente de confirmation)",
    "booked": "Confirmé",
    "released": "Libéré",
    "expired": "Réservation expirée",
    "cancelled": "Annulé",
}
CANCEL_SIDES = {"patient": "Le patient", "practitioner": "Le praticien", "handler": "L'opérateur"}
MESSAGE_STATUSES = {
    "pending": "En cours d'envoi",
    "sent": "Envoyé",
    "dead": "Échec de l'envoi",
    "skipped": "Non envoyé",
}
MESSAGE_CHANNELS = {"sms": "SMS", "email": "E-mail"}
MESSAGE_EVENTS = {"booking.confirmed": "Confirmation", "booking.cancelled": "Annulation"}
MESSAGE_ERRORS = {
    "no address to send to": "pas de numéro de mobile ou d'adresse e-mail",
    "the booking changed since": "le rendez-vous a changé depuis",
    "the appointment time has passed": "l'heure du rendez-vous est passée",
}
CALLBACK_SOURCES = {"handler": "Rappel prévu", "cancellation": "Rappel : rendez-vous annulé par le praticien"}
DUPLICATE_MATCHES = {"patient": "même patient", "phone": "même numéro de téléphone"}

REASONS = {
    "home_visit_needs_commune": "Une visite à domicile nécessite la commune du patient.",
    "no_modality": "Aucune des modalités demandées n'est possible.",
    "no_free_slot": "Aucun créneau libre ne correspond aux besoins (profession, spécialité, modalité) "
    "dans les prochains jours.",
    "too_soon": "Les créneaux libres commencent trop tôt pour que le patient ait le temps de s'y rendre "
    "(délai minimal de la CPTS).",
    "not_before": "Tous les créneaux libres commencent avant l'heure demandée.",
    "too_far": "Tous les créneaux libres sont plus loin que la distance demandée.",
    "distance_unknown": "La commune du patient est inconnue : les distances ne peuvent pas être calculées.",
    "none_before_deadline": "Aucun créneau proposé ne commence avant l'échéance de la demande.",
}
ALTERNATIVES = {
    "without_filters": "Sans vos filtres",
    "later": "Plus tard",
    "teleconsultation": "En téléconsultation",
    "other_modality": "Autre modalité (au cabinet ou à domicile)",
    "other_specialty": "Autre spécialité",
    "other_profession": "Autre profession",
}

# Refusals of the service, as the handler should read them (unknown codes fall back to a generic text).
PROBLEMS = {
    "webhook_url_refused": "Adresse refusée : https obligatoire, ni réseau privé ni adresse locale ou réservée.",
    "fhir_source_url_refused": "Adresse refusée : https obligatoire, ni réseau privé ni adresse locale ou réservée.",
    "slot_unavailable": "Ce créneau vient d'être pris par quelqu'un d'autre : choisissez-en un autre.",
    "hold_expired": "La réservation a expiré et le créneau est parti : choisissez-en un autre.",
    "hold_released": "Cette réservation a été libérée.",
    "request_booked": "Cette demande a déjà un rendez-vous.",
    "request_closed": "Cette demande est clôturée.",
    "booking_not_booked": "Ce rendez-vous n'est pas confirmé.",
    "booking_not_held": "Ce rendez-vous est déjà confirmé.",
    "booking_cancelled": "Ce rendez-vous a été annulé.",
    "appointment_started": "Le rendez-vous a commencé : il ne peut plus être annulé.",
    "red_flag_transfer_required": "Signe de gravité : orientez vers le 15 (ou les urgences), ou faites lever "
    "le signe par un médecin régulateur.",
    "no_red_flag": "Cette demande n'a pas de signe de gravité à lever.",
    "regulator_required": "Lever un signe de gravité est une décision médicale : elle revient à un médecin "
    "régulateur (ou, pour une demande régulée par le SAS, au régulateur nommé sur la demande).",
    "regulating_physician_mismatch": "Un régulateur lève un signe de gravité sous son propre RPPS.",
    "invalid_transition": "Cette action n'est pas possible dans l'état actuel de la demande.",
    "slot_started": "Ce créneau a déjà commencé.",
    "identity_purged": "L'identité de cette demande a été effacée (durée de conservation dépassée).",
    "not_found": "Introuvable (ou d'une autre CPTS).",
    "forbidden_role": "Votre rôle ne permet pas cette action.",
    "idempotency_key_reused": "Ce formulaire a déjà servi : rechargez la page.",
    "invalid_credentials": "E-mail ou mot de passe incorrect.",
    "otp_required": "Saisissez le code à 6 chiffres de votre application d'authentification.",
    "invalid_otp": "Ce code n'est pas valable : utilisez le code affiché maintenant, ou un code de secours.",
    "cpts_required": "Cet e-mail donne accès à plusieurs CPTS : choisissez la vôtre.",
    "too_many_requests": "Trop d'essais infructueux : réessayez dans quelques minutes.",
    "login_locked": "Trop d'essais infructueux : réessayez dans quelques minutes, ou demandez à la coordination "
    "de débloquer le compte.",
    "database_unavailable": "Le service est momentanément indisponible : réessayez dans quelques secondes.",
}
GENERIC_PROBLEM = "L'opération n'a pas pu être faite."

# Pydantic's error types, as a field's message.
VALIDATION = {
    "missing": "Champ obligatoire.",
    "string_too_short": "Champ obligatoire.",
    "string_too_long": "Texte trop long.",
    "string_pattern_mismatch": "Format non reconnu.",
    "date_from_datetime_parsing": "Date non valable (jj/mm/aaaa).",
    "date_parsing": "Date non valable (jj/mm/aaaa).",
    "date_from_datetime_inexact": "Date non valable.",
    "datetime_parsing": "Date et heure non valables.",
    "literal_error": "Choix non valable.",
    "enum": "Choix non valable.",
    "value_error": "Valeur non valable.",
    "too_long": "Trop d'éléments.",
    "greater_than": "Valeur trop petite.",
    "less_than_equal": "Valeur trop grande.",
    "float_parsing": "Nombre attendu.",
    "uuid_parsing": "Choix non valable.",
}
# A FHIR source (an editor's SAS interface): what the console says of it.
FLOWS = {"INT_R01": "Professionnels de santé (INT_R01)", "INT_R04": "Créneaux CPTS (INT_R04)"}
SLOT_TYPES = {
    "SNP": "Soins non programmés (SNP)",
    "CPTS": "Réservés à la CPTS (CPTS)",
    "PRO": "Réservés aux professionnels (PRO)",
    "PUBLIC": "Ouverts au public (PUBLIC)",
}
CREDENTIALS = {
    "bearer_token": "un jeton d'accès",
    "client_certificate": "un certificat client (TLS mutuel)",
    "none": "aucun identifiant",
}
SOURCE_STATES = {"paused": "en pause", "failing": "en échec", "ok": "à jour", "waiting": "premier relevé attendu"}


def source_state(source: FhirSourceOut) -> str:
    """A FHIR source's state in one word (a key of SOURCE_STATES): the list of software and the
    source's page say the same."""
    if not source.enabled:
        return "paused"
    error = source.last_error
    if error is not None and (source.last_success_at is None or error.at > source.last_success_at):
        return "failing"
    return "ok" if source.last_success_at is not None else "waiting"


PULL_ERRORS = {
    "timeout": "l'éditeur n'a pas répondu à temps",
    "tls": "échec de la connexion sécurisée (certificat)",
    "connection": "connexion impossible",
    "http_status": "réponse en erreur",
    "operation_outcome": "l'éditeur a refusé la recherche",
    "bundle": "réponse non conforme au guide SAS",
    "refused_url": "adresse refusée (réseau privé ou non autorisé)",
    "credentials": "identifiants illisibles : enregistrez-les de nouveau",
}

# Our own validation messages (English in the API), in French.
MESSAGES = {
    "an SMS needs the patient's phone number": "Un SMS nécessite le numéro du patient.",
    "an e-mail needs the patient's e-mail address": "Un e-mail nécessite l'adresse e-mail du patient.",
    "implausible birth date": "Date de naissance invraisemblable.",
    "the INS key does not match the number": "La clé de l'INS ne correspond pas au numéro.",
    "a specialty is only asked of physicians (profession 10)": "Une spécialité ne concerne que les médecins.",
    "a callback is due now or later": "Un rappel se prévoit maintenant ou plus tard.",
    "client_cert and client_key go together": "Le certificat et sa clé privée vont ensemble.",
    "either a bearer token or a client certificate, not both": "Un jeton ou un certificat, pas les deux.",
}
FIELDS = {
    "family_name": "Nom",
    "given_name": "Prénom",
    "birth_date": "Date de naissance",
    "phone": "Téléphone",
    "email": "E-mail",
    "commune_insee": "Commune",
    "motif": "Motif",
    "ins": "INS",
}


NOT_FOUND = {
    "request": "Cette demande est introuvable (ou appartient à une autre CPTS).",
    "booking": "Ce rendez-vous est introuvable (ou appartient à une autre CPTS).",
    "slot": "Ce créneau n'existe plus.",
    "callback": "Ce rappel est introuvable.",
}


def problem_text(code: str, detail: str | None = None) -> str:
    if code.endswith("_not_found"):
        return NOT_FOUND.get(code.removesuffix("_not_found"), PROBLEMS["not_found"])
    return PROBLEMS.get(code, GENERIC_PROBLEM)


# Pydantic's bounds, said with the bound itself (the context of its error): a coordinator who typed
# 200 hours reads what the field accepts.
BOUNDS = {
    "greater_than_equal": ("ge", "Valeur trop petite : {} au moins."),
    "greater_than": ("gt", "Valeur trop petite : elle doit dépasser {}."),
    "less_than_equal": ("le", "Valeur trop grande : {} au plus."),
    "less_than": ("lt", "Valeur trop grande : elle doit rester sous {}."),
}


def validation_text(error: dict[str, Any]) -> str:
    """One pydantic error as the French message shown next to its field."""
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if message in MESSAGES:
        return MESSAGES[message]
    kind = str(error.get("type", ""))
    if kind in BOUNDS:
        name, text = BOUNDS[kind]
        bound = (error.get("ctx") or {}).get(name)
        if isinstance(bound, int | float | Decimal) and not isinstance(bound, bool):
            return text.format(french.number(bound, 0 if float(bound).is_integer() else 2))
    if message.startswith("unknown Hub Santé motif"):
        return "Motif inconnu : choisissez-le dans la liste."
    if "INS" in message or "identity_status" in message:
        return "Un INS ne se saisit qu'avec une identité qualifiée."
    return VALIDATION.get(str(error.get("type", "")), "Valeur non valable.")
