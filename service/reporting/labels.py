"""The French words of the exports meant for people: column titles, sheet names, indicator and
category labels. The JSON keys and the English exports keep the field names; a name missing here
falls back to itself (a test checks that every exported name has its French title)."""

from __future__ import annotations

from enum import StrEnum


class Lang(StrEnum):
    fr = "fr"
    en = "en"


SHEETS = {
    "Report": "Rapport",
    "Demand": "Demande",
    "Response": "Réponse",
    "Appointments": "Rendez-vous",
    "Supply": "Offre",
    "Handlers": "Opérateurs",
    "Statement": "Relevé",
    "Slots": "Créneaux",
    "Envelope": "Enveloppe",
    "Months": "Mois",
    "Envelopes": "Enveloppes",
    "Cover": "Synthèse",
    "Targets": "Objectifs",
    "Activity": "Activité",
}

COLUMNS = {
    # the monthly report
    "section": "Rubrique",
    "indicator": "Indicateur",
    "category": "Catégorie",
    "value": "Valeur",
    "field": "Champ",
    "user_id": "Identifiant",
    "name": "Nom",
    "requests_handled": "Demandes traitées",
    "median_handling_minutes": "Délai médian de traitement (min)",
    # the compensation statement
    "practitioner_id": "Identifiant du professionnel",
    "id_type": "Type d'identifiant",
    "national_id": "RPPS / ADELI",
    "family_name": "Nom",
    "given_name": "Prénom",
    "profession": "Profession",
    "site": "Lieu d'exercice",
    "slots_counted": "Créneaux comptés",
    "hours_unfilled": "Heures non pourvues",
    "hours_filled": "Heures pourvues",
    "rate_unfilled": "Taux horaire non pourvu (€)",
    "rate_filled": "Taux horaire pourvu (€)",
    "gross": "Montant brut (€)",
    "capped": "Après plafond annuel (€)",
    "scale": "Coefficient d'enveloppe",
    "paid": "Montant à verser (€)",
    "slot_id": "Identifiant du créneau",
    "start": "Début",
    "end": "Fin",
    "hours": "Heures",
    "booked": "Pourvu",
    "rate": "Taux horaire (€)",
    "month": "Mois",
    "annual": "Enveloppe annuelle (€)",
    "remaining_before": "Restant avant le mois (€)",
    "paid_this_month": "Versé ce mois (€)",
    "provisional": "Provisoire",
    # the contract year
    "requests_total": "Demandes",
    "needing_consultation": "Demandes nécessitant une consultation",
    "booked_within_24h": "Rendez-vous sous 24 h",
    "rate_within_24h": "Taux sous 24 h",
    "booked_within_48h": "Rendez-vous sous 48 h",
    "unresolved_past_deadline": "Sans réponse à l'échéance",
    "no_solution": "Sans solution",
    "transfer_15": "Transférées au 15",
    "slots_published": "Créneaux publiés",
    "slots_booked": "Créneaux pourvus",
    "fill_rate": "Taux de remplissage",
    "participating_professionals": "Professionnels participants",
    "compensation_paid": "Indemnisation versée (€)",
    "line": "Ligne",
    "euros": "Montant (€)",
    "target": "Objectif",
    "comparator": "Sens",
    "met": "Atteint",
    # the activity export
    "request_ref": "Référence de la demande",
    "patient_pseudonym": "Pseudonyme du patient",
    "imported": "Importée",
    "received_at": "Reçue le",
    "received_date": "Date de réception",
    "received_hour": "Heure de réception",
    "received_weekday": "Jour de la semaine",
    "deadline_at": "Échéance",
    "channel": "Canal",
    "via_sas": "Via le SAS",
    "motif": "Motif",
    "motif_level1": "Motif (niveau 1)",
    "motif_classification": "Classement du motif",
    "red_flagged": "Signe de gravité",
    "needs_profession": "Profession demandée",
    "needs_specialty": "Spécialité demandée",
    "needs_modalities": "Modalités acceptées",
    "patient_age_band": "Tranche d'âge",
    "patient_sex": "Sexe",
    "patient_commune": "Commune du patient",
    "outcome": "Orientation",
    "oriented_at": "Orientée le",
    "time_to_orientation_minutes": "Délai d'orientation (min)",
    "appointment_start": "Rendez-vous le",
    "appointment_modality": "Modalité du rendez-vous",
    "practitioner_profession": "Profession du praticien",
    "delay_to_appointment_hours": "Délai jusqu'au rendez-vous (h)",
    "within_24h": "Sous 24 h",
    "within_48h": "Sous 48 h",
    "appointment_status": "Suite du rendez-vous",
    "handled_by": "Traitée par",
}

SECTIONS = {"demand": "Demande", "response": "Réponse", "appointments": "Rendez-vous", "supply": "Offre"}

INDICATORS = {
    "requests_total": "Demandes reçues",
    "by_channel": "Demandes par canal",
    "via_sas": "Demandes régulées par le SAS",
    "imported": "Demandes importées",
    "booked": "Rendez-vous pris",
    "transfer_15": "Orientées vers le 15",
    "emergency_department": "Orientées vers les urgences",
    "advice": "Conseil",
    "pharmacy": "Orientées vers une pharmacie",
    "own_gp": "Renvoyées vers le médecin traitant",
    "no_solution": "Sans solution",
    "patient_declined": "Refus du patient",
    "unreachable": "Patient injoignable",
    "duplicate": "Doublons",
    "open": "En cours",
    "unresolved_past_deadline": "Sans réponse à l'échéance",
    "by_profession": "Demandes par profession",
    "by_specialty": "Demandes par spécialité",
    "by_modality": "Demandes par modalité acceptée",
    "by_age_band": "Demandes par tranche d'âge",
    "by_commune": "Demandes par commune",
    "by_motif": "Demandes par motif (niveau 1)",
    "by_hour": "Demandes par heure",
    "by_day_of_week": "Demandes par jour de la semaine",
    "needing_consultation": "Demandes nécessitant une consultation",
    "booked_within_24h": "Rendez-vous sous 24 h",
    "rate_within_24h": "Taux de rendez-vous sous 24 h",
    "booked_within_48h": "Rendez-vous sous 48 h",
    "rate_within_48h": "Taux de rendez-vous sous 48 h",
    "delay_to_appointment_hours": "Délai jusqu'au rendez-vous (h)",
    "time_to_orientation_minutes": "Délai d'orientation (min)",
    "unmet_demand": "Demande non satisfaite",
    "fulfilled": "Rendez-vous honorés",
    "noshow": "Patients absents",
    "cancelled_by_patient": "Annulés par le patient",
    "cancelled_by_practitioner": "Annulés par le praticien",
    "cancelled_by_handler": "Annulés par l'opérateur",
    "outcome_unknown": "Suite inconnue",
    "booked_by_modality": "Rendez-vous par modalité",
    "slots_published": "Créneaux publiés",
    "slots_booked": "Créneaux pourvus",
    "fill_rate": "Taux de remplissage",
    "slots_withdrawn": "Créneaux retirés",
    "slots_withdrawn_late": "Créneaux retirés tardivement",
    "participating_professionals": "Professionnels participants",
}

CATEGORIES = {
    # sub-fields of composite indicators
    "median": "médiane",
    "p90": "90e centile",
    "total": "total",
    "count": "nombre",
    "hours": "heures",
    "by_hour": "par heure",
    "by_day_of_week": "par jour",
    "by_profession": "par profession",
    # outcomes, channels, modalities, age bands, days
    "booked": "rendez-vous pris",
    "transfer_15": "15",
    "emergency_department": "urgences",
    "advice": "conseil",
    "pharmacy": "pharmacie",
    "own_gp": "médecin traitant",
    "no_solution": "sans solution",
    "patient_declined": "refus du patient",
    "unreachable": "injoignable",
    "duplicate": "doublon",
    "open": "en cours",
    "unresolved_past_deadline": "sans réponse à l'échéance",
    "phone": "téléphone",
    "sas": "SAS",
    "professional": "professionnel",
    "other": "autre",
    "AMB": "au cabinet",
    "VR": "téléconsultation",
    "HH": "à domicile",
    "unknown": "inconnu",
    "monday": "lundi",
    "tuesday": "mardi",
    "wednesday": "mercredi",
    "thursday": "jeudi",
    "friday": "vendredi",
    "saturday": "samedi",
    "sunday": "dimanche",
}

TRUE_FALSE = {True: "oui", False: "non"}


def column(name: str, lang: Lang) -> str:
    return COLUMNS.get(name, name) if lang is Lang.fr else name


def sheet(name: str, lang: Lang) -> str:
    return SHEETS.get(name, name) if lang is Lang.fr else name


def indicator(name: str, lang: Lang) -> str:
    return INDICATORS.get(name, name) if lang is Lang.fr else name


def category(path: str, lang: Lang) -> str:
    """ "by_hour.08" -> "par heure.08" in French: each dotted part translated when known."""
    if lang is Lang.en:
        return path
    return ".".join(CATEGORIES.get(part, part) for part in path.split(".")) if path else ""


def section(name: str, lang: Lang) -> str:
    return SECTIONS.get(name, name) if lang is Lang.fr else name
