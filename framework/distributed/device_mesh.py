"""torch.distributed.device_mesh: DeviceMesh and init_device_mesh.

A DeviceMesh lays the global ranks out as an n-D array; each mesh dimension has one process
group per line of ranks along it (made with one MPI split per dimension, so every rank must
create the mesh, as in PyTorch). mesh["dp"] is the 1-D mesh along that dimension through this
rank; get_group(dim) its process group.
"""
import numpy as np

from . import (_pg, _group_split, ProcessGroup, get_world_size, is_initialized,
               init_process_group, get_default_backend_for_device, _pg_count)

__all__ = ["DeviceMesh", "init_device_mesh"]


class DeviceMesh:
    def __init__(self, device_type, mesh, *, mesh_dim_names=None, backend_override=None,
                 _init_backend=True, _groups=None):
        self.device_type = str(device_type)
        arr = np.asarray(mesh.numpy() if hasattr(mesh, "numpy") else mesh, dtype=np.int64)
        if arr.ndim == 0:
            raise ValueError("DeviceMesh: mesh must have at least one dimension")
        self._mesh = arr
        if mesh_dim_names is not None:
            mesh_dim_names = tuple(mesh_dim_names)
            if len(mesh_dim_names) != arr.ndim:
                raise RuntimeError(f"mesh_shape and mesh_dim_names should have same length! "
                                   f"Found len(mesh_dim_names): {len(mesh_dim_names)} and "
                                   f"len(mesh_shape):{arr.ndim}.")
            if len(set(mesh_dim_names)) != len(mesh_dim_names):
                raise RuntimeError(f"Each mesh_dim_name must be unique. Found repeated "
                                   f"mesh_dim_name in mesh_dim_names {mesh_dim_names}")
        self.mesh_dim_names = mesh_dim_names
        flat = sorted(arr.reshape(-1).tolist())
        if len(set(flat)) != len(flat):
            raise RuntimeError(f"DeviceMesh: the mesh {arr.tolist()} repeats a rank")
        if not is_initialized():
            init_process_group(get_default_backend_for_device(self.device_type))
        world = get_world_size()
        if arr.size > world:
            raise RuntimeError(f"Mesh should not be bigger than default world size {world}, "
                               f"but found {arr.size} ranks!")
        me = _pg(None, "DeviceMesh").rank()
        where = np.argwhere(arr == me)
        self._coord = tuple(int(c) for c in where[0]) if len(where) else None
        self._groups = _groups if _groups is not None else (
            self._make_groups() if _init_backend else [None] * arr.ndim)

    def _make_groups(self):
        """One group per dimension: the line of ranks along it through this rank."""
        world = _pg(None, "DeviceMesh")
        me = world.rank()
        groups = []
        for d in range(self._mesh.ndim):
            lines = np.moveaxis(self._mesh, d, -1).reshape(-1, self._mesh.shape[d])
            if len(lines) == 1 and lines[0].tolist() == world._ranks:
                groups.append(world)        # the whole world in order: reuse it, as torch
                continue
            color = key = None
            for i, line in enumerate(lines):
                if me in line:
                    color, key = i, int(np.where(line == me)[0][0])
            impl = _group_split(world, color, key or 0)
            _pg_count[0] += len(lines)
            groups.append(None if impl is None else
                          ProcessGroup(impl, lines[color].tolist(), world._backend))
        return groups

    # ---- queries -----------------------------------------------------------------------------
    @property
    def mesh(self):
        from .. import from_numpy
        return from_numpy(self._mesh.copy())

    @property
    def ndim(self):
        return self._mesh.ndim

    @property
    def shape(self):
        return tuple(self._mesh.shape)

    def size(self, mesh_dim=None):
        return int(self._mesh.size if mesh_dim is None else self._mesh.shape[mesh_dim])

    def _dim(self, mesh_dim, what):
        if mesh_dim is None:
            if self.ndim > 1:
                extra = (("If you want to get the list of all the ProcessGroups in the "
                          "DeviceMesh,please use `get_all_groups()` instead.",)
                         if what == "get_group" else ())
                raise RuntimeError(str((f"Found the DeviceMesh have {self.ndim} dimensions",
                                        "Optional kwarg `mesh_dim` needs to be specified when "
                                        "device_mesh.ndim > 1.") + extra))
            return 0
        if isinstance(mesh_dim, str):
            if not self.mesh_dim_names or mesh_dim not in self.mesh_dim_names:
                raise KeyError(f"Mesh dimension '{mesh_dim}' does not exist. Available mesh "
                               f"dimensions are: mesh_dim_names={self.mesh_dim_names}")
            return self.mesh_dim_names.index(mesh_dim)
        if not -self.ndim <= mesh_dim < self.ndim:
            raise IndexError(f"{what}: mesh_dim {mesh_dim} is out of range for a "
                             f"{self.ndim}-D mesh")
        return mesh_dim % self.ndim

    def get_group(self, mesh_dim=None):
        return self._groups[self._dim(mesh_dim, "get_group")]

    def get_all_groups(self):
        return list(self._groups)

    def get_rank(self):
        return _pg(None, "DeviceMesh.get_rank").rank()

    def get_local_rank(self, mesh_dim=None):
        d = self._dim(mesh_dim, "get_local_rank")
        return None if self._coord is None else self._coord[d]

    def get_coordinate(self):
        return self._coord

    # ---- slicing -----------------------------------------------------------------------------
    def __getitem__(self, names):
        names = (names,) if isinstance(names, str) else tuple(names)
        valid = list(self.mesh_dim_names or ())
        if not names or any(n not in valid for n in names):
            raise KeyError(f"Invalid mesh_dim_names {names} specified. Valid mesh_dim_names "
                           f"are {valid}.")
        if names == tuple(valid):
            return self
        dims = [valid.index(n) for n in names]
        if self._coord is None:
            raise RuntimeError("DeviceMesh: this rank is not in the mesh, so it has no "
                               "submesh")
        # the submesh through this rank: fix the other dimensions at this rank's coordinate
        idx = tuple(slice(None) if d in dims else self._coord[d] for d in range(self.ndim))
        sub = np.transpose(self._mesh[idx], np.argsort(np.argsort(dims)))
        if len(dims) == 1:
            groups = [self._groups[dims[0]]]
        else:                       # more than one dimension: make its groups (collective)
            groups = None
        return DeviceMesh(self.device_type, sub, mesh_dim_names=names, _groups=groups)

    def __repr__(self):
        sizes = self._mesh.shape
        dims = (", ".join(f"{n}={s}" for n, s in zip(self.mesh_dim_names, sizes))
                if self.mesh_dim_names else ", ".join(str(s) for s in sizes)
                + ("," if len(sizes) == 1 else ""))
        strides = [int(np.prod(sizes[i + 1:], dtype=np.int64)) for i in range(len(sizes))]
        # PyTorch's layout prints a size-1 dimension's stride as ()
        st = ", ".join("()" if s == 1 else str(v) for s, v in zip(sizes, strides))
        st += "," if len(sizes) == 1 else ""
        return f"DeviceMesh(({dims}), '{self.device_type}', stride=({st}))"

    __str__ = __repr__

    def __eq__(self, other):
        return (isinstance(other, DeviceMesh) and other.device_type == self.device_type
                and np.array_equal(other._mesh, self._mesh)
                and other.mesh_dim_names == self.mesh_dim_names)

    def __hash__(self):
        return hash((self.device_type, self._mesh.tobytes(), self.mesh_dim_names))

    @staticmethod
    def from_group(group, device_type, mesh=None, *, mesh_dim_names=None):
        groups = [group] if isinstance(group, ProcessGroup) else list(group)
        if mesh is None:
            if len(groups) != 1:
                raise ValueError("DeviceMesh.from_group: give mesh= for more than one group")
            mesh = groups[0]._ranks
        return DeviceMesh(device_type, mesh, mesh_dim_names=mesh_dim_names, _groups=groups)


def init_device_mesh(device_type, mesh_shape, *, mesh_dim_names=None, backend_override=None):
    """A DeviceMesh of the world's ranks 0..N-1 in C order, shaped mesh_shape."""
    mesh_shape = tuple(int(s) for s in mesh_shape)
    if mesh_dim_names is not None and len(mesh_dim_names) != len(mesh_shape):
        raise RuntimeError(f"mesh_shape and mesh_dim_names should have same length! Found "
                           f"len(mesh_dim_names): {len(mesh_dim_names)} and "
                           f"len(mesh_shape):{len(mesh_shape)}.")
    if not is_initialized():
        init_process_group(get_default_backend_for_device(device_type))
    n = int(np.prod(mesh_shape, dtype=np.int64))
    world = get_world_size()
    if n > world:
        raise RuntimeError(f"Mesh should not be bigger than default world size {world}, but "
                           f"found {n} ranks!")
    mesh = np.arange(n, dtype=np.int64).reshape(mesh_shape)
    return DeviceMesh(device_type, mesh, mesh_dim_names=mesh_dim_names)
