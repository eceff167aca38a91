"""The `ingest` stage: SMILES files in, a de-duplicated, split Parquet table and a reject report out."""

from __future__ import annotations

from latentsci.errors import InputDataError
from latentsci.molecules.chem import DESCRIPTOR_NAMES, process_smiles_batch
from latentsci.molecules.ingest.table import (
    IngestConfig,
    assemble,
    batches,
    read_sources,
    summary,
    write_outputs,
)
from latentsci.molecules.plots import property_histograms
from latentsci.pipeline.stage import Stage, StageContext, StageResult
from latentsci.runtime import map_batches


def _names(source) -> str:
    """The input file, or files, for a message."""
    return ", ".join(map(str, source)) if isinstance(source, list) else str(source)


def ingest(config: IngestConfig, ctx: StageContext) -> StageResult:
    """Read, parse in parallel, de-duplicate, split; write the table and the reject report."""
    records = read_sources(config)
    parsed_batches = map_batches(process_smiles_batch, batches(records, config.batch_size),
                                 desc=f"{ctx.name}: parse", progress=ctx.progress,
                                 keep_largest_fragment=config.keep_largest_fragment,
                                 max_heavy_atoms=config.max_heavy_atoms)
    parsed = [item for batch in parsed_batches for item in batch]
    table, report = assemble(records, parsed, config, config.id_prefix or ctx.name)
    if table.empty:
        raise InputDataError(f"{_names(config.source)}: no valid molecule among {len(records)} "
                             f"(see {ctx.out_dir / 'rejects.csv'})")
    paths = write_outputs(table, report, ctx.out_dir)
    plot = property_histograms(table, list(DESCRIPTOR_NAMES), ctx.out_dir / "properties.png")
    return StageResult(outputs={k: str(v) for k, v in paths.items()},
                       metrics=summary(records, table, report), artifacts=[paths["rejects"], plot])


INGEST = Stage("ingest", IngestConfig, ingest, gives=("molecules", "rejects"))
