"""nn.parallel: DistributedDataParallel and DataParallel (distributed issue)."""
