"""Field data in and out: open_fields (Zarr, The Well's HDF5), the Zarr writer, training windows."""
