"""torch.utils.data"""
