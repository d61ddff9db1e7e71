"""Reading built datasets: the manifest contract, torchgeo datasets, paired view and datamodule."""
