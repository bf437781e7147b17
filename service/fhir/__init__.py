"""The SAS facade: FHIR R4 resources of the ANS guide "Service d'Accès aux Soins"."""
