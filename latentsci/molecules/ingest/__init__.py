"""Readers for the files users bring (SMILES lists, CSV tables)."""

from latentsci.molecules.ingest.files import SmilesRecords, read_generated, read_smiles_file

__all__ = ["SmilesRecords", "read_generated", "read_smiles_file"]
