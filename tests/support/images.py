"""Upload-then-import in one call, for driver tests (the operator uploads in its VM act step and imports with
`create_vm(import_from=...)` or `import_image`)."""

from __future__ import annotations

from pathlib import Path

from proxnix.adapters.image_upload import UploadResult, upload_image
from proxnix.adapters.proxmox_client import ImportMethod, ProxmoxClient
from proxnix.proxmox.disk_import import ImportedDisk


async def upload_and_import(
    client: ProxmoxClient,
    local_path: str | Path,
    cache_dir: str,
    vmid: int,
    owner_uid: str,
    *,
    slot: str,
    storage: str,
    method: ImportMethod = "import-from",
    expected_sha256: str | None = None,
) -> tuple[UploadResult, ImportedDisk]:
    """Upload (or find cached) the image on the client's node, then import it as the owned VM's disk in `slot`."""
    upload = await upload_image(
        client.pool, local_path, cache_dir, expected_sha256=expected_sha256, retry=client.retry
    )
    disk = await client.import_image(
        vmid, owner_uid, upload.remote_path, slot=slot, storage=storage, method=method
    )
    return upload, disk
