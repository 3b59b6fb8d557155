"""The crm_sync service: the customer directory, kept in sync with FileMaker (A6Telecom) and Quadra (CaSystem)."""
