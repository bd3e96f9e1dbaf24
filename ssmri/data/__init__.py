"""Data: image sources, the HDF5 k-space cache and the LightningDataModule."""

from ssmri.data.batch import MRIBatch, collate
from ssmri.data.brain import BrainTemplateSlices
from ssmri.data.cache import CacheError
from ssmri.data.datamodule import MRIDataModule
from ssmri.data.fastmri import FastMRISingleCoilFiles, FastMRISliceTensor
from ssmri.data.fastmri_multicoil import FastMRIMultiCoilFiles
from ssmri.data.kspace_dataset import KspaceDataset
from ssmri.data.phantom import PhantomImages
from ssmri.data.sources import DataSource, ImageSource, MeasuredSlices

__all__ = [
    "BrainTemplateSlices",
    "CacheError",
    "DataSource",
    "FastMRIMultiCoilFiles",
    "FastMRISingleCoilFiles",
    "FastMRISliceTensor",
    "ImageSource",
    "KspaceDataset",
    "MRIBatch",
    "MRIDataModule",
    "MeasuredSlices",
    "PhantomImages",
    "collate",
]
