# Talks to azurite's well-known development account, signed with SharedKey as the REST API
# wants (object_store cannot create containers):
#   python3 azure_container.py PORT CONTAINER          creates the container
#   python3 azure_container.py PORT CONTAINER BLOB     prints the blob's HTTP status (200, 404)
import base64, hashlib, hmac, sys, urllib.error, urllib.request
from email.utils import formatdate

port, container = sys.argv[1], sys.argv[2]
blob = sys.argv[3] if len(sys.argv) > 3 else None
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date = formatdate(usegmt=True)
version = "2021-08-06"
if blob is None:
    method, ctype, path, query, canon_q = "PUT", "application/octet-stream", f"{container}", "?restype=container", "\nrestype:container"
else:
    method, ctype, path, query, canon_q = "HEAD", "", f"{container}/{blob}", "", ""
string = "\n".join([method, "", "", "", "", ctype, "", "", "", "", "", "",
    f"x-ms-date:{date}\nx-ms-version:{version}",
    f"/{account}/{account}/{path}{canon_q}"])
sig = base64.b64encode(hmac.new(key, string.encode(), hashlib.sha256).digest()).decode()
headers = {"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}"}
if ctype:
    headers["Content-Type"] = ctype
req = urllib.request.Request(f"http://127.0.0.1:{port}/{account}/{path}{query}", method=method,
    data=b"" if method == "PUT" else None, headers=headers)
try:
    print(urllib.request.urlopen(req).status)
except urllib.error.HTTPError as e:
    if blob is None:
        raise
    print(e.code)
