# JupyterHub configuration for Dry Lab on a single host (a programme's first server).
#
# Run as root:  jupyterhub -f deploy/single-host/jupyterhub_config.py
# (`make hub` runs deploy/single-host/run-hub.sh, a try-out on 127.0.0.1:8000.)
# Everything site-specific comes from environment variables, listed in docs/deploy.md:
#
#   DRYLAB_HUB_AUTH         who may log in (required; no default, so a test authenticator is
#                           never used by accident):
#       shared-password  one password for every listed user; try-outs and tests ONLY
#       pam              the host's own unix accounts and passwords (the server is the directory)
#       native           jupyterhub-nativeauthenticator: residents sign up, an admin approves;
#                        for a programme with no central directory it may use
#       ldap             jupyterhub-ldapauthenticator: the hospital's Active Directory / LDAP;
#                        the usual choice on a hospital network
#       oauth            oauthenticator's GenericOAuthenticator: the hospital's single sign-on
#                        (Azure AD / Entra ID, Keycloak, ADFS ... over OpenID Connect)
#   DRYLAB_INSTRUCTORS      comma-separated instructor user names (required)
#   DRYLAB_RESIDENTS        comma-separated resident user names (required for shared-password
#                           and pam; with native / ldap / oauth it may stay empty and the
#                           authenticator's group rules decide)
#   DRYLAB_HUB_SPAWNER      local (default: one unix user per resident) | simple (try-out
#                           without root: every server runs as the hub's own user)
#   DRYLAB_CREATE_USERS     1 = create missing unix accounts on first login (useradd)
#   DRYLAB_EXCHANGE_ROOT    nbgrader exchange (default /srv/nbgrader/exchange)
#   DRYLAB_HUB_STATE_DIR    hub database, cookie secret, pid files (default /srv/drylab/hub)
#   DRYLAB_USER_ENV_DIR     only used when the hub's Python is not readable by other users
#                           (default /srv/drylab/user-env)
#   DRYLAB_HUB_IP / DRYLAB_HUB_PORT            public address (default 127.0.0.1:8000;
#                                              put TLS in front, see docs/deploy.md)
#   DRYLAB_HUB_API_PORT / DRYLAB_PROXY_API_PORT  internal ports (default 8081 / 8001)
#
# Why a LocalProcessSpawner with real unix users: nbgrader's exchange keeps residents'
# submissions and feedback apart with unix permissions only, and a resident's notebook code
# runs with their server's uid. With one uid per resident and 0700 homes, resident A's code
# cannot read resident B's work; with SimpleLocalProcessSpawner (one uid for all) it could,
# so `simple` is for a try-out on a laptop only and the hub says so in its log.
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import drylab_hub  # noqa: E402 (the helpers sit next to this file, not on sys.path)
import user_env  # noqa: E402

c = get_config()  # noqa: F821 (traitlets injects get_config into config files)

instructors = drylab_hub.env_list("DRYLAB_INSTRUCTORS")
residents = drylab_hub.env_list("DRYLAB_RESIDENTS")
if not instructors:
    raise drylab_hub.HubConfigError(
        "environment variable DRYLAB_INSTRUCTORS is not set: name at least one instructor "
        "(the unix user who releases, collects and grades)")
auth = drylab_hub.require_env(
    "DRYLAB_HUB_AUTH", "choose shared-password (try-out), pam, native, ldap or oauth")
spawner_kind = os.environ.get("DRYLAB_HUB_SPAWNER", "local")
create_users = os.environ.get("DRYLAB_CREATE_USERS", "0") == "1"
exchange_root = Path(os.environ.get("DRYLAB_EXCHANGE_ROOT", "/srv/nbgrader/exchange"))
state_dir = Path(os.environ.get("DRYLAB_HUB_STATE_DIR", "/srv/drylab/hub"))
state_dir.mkdir(parents=True, exist_ok=True)
os.chmod(state_dir, 0o700)

# --- network: the proxy is configurable-http-proxy from deploy/node_modules (npm) ----------
ip = os.environ.get("DRYLAB_HUB_IP", "127.0.0.1")
port = int(os.environ.get("DRYLAB_HUB_PORT", "8000"))
c.JupyterHub.bind_url = f"http://{ip}:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("DRYLAB_HUB_API_PORT", "8081"))
proxy = drylab_hub.DEPLOY / "node_modules" / ".bin" / "configurable-http-proxy"
if not proxy.exists():
    raise drylab_hub.HubConfigError(
        f"{proxy} is missing: run `npm ci` in deploy/ (scripts/install-system-deps.sh does)")
c.ConfigurableHTTPProxy.command = [str(proxy)]
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{int(os.environ.get('DRYLAB_PROXY_API_PORT', '8001'))}")
c.ConfigurableHTTPProxy.pid_file = str(state_dir / "proxy.pid")
c.JupyterHub.pid_file = str(state_dir / "jupyterhub.pid")
c.JupyterHub.db_url = f"sqlite:///{state_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state_dir / "jupyterhub_cookie_secret")

# --- who may log in --------------------------------------------------------------------------
if auth == "shared-password":
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = drylab_hub.require_env(
        "DRYLAB_SHARED_PASSWORD", "the try-out password (at least 8 characters)")
    c.Authenticator.allowed_users = set(instructors + residents)
elif auth == "pam":
    c.JupyterHub.authenticator_class = "pam"
    c.Authenticator.allowed_users = set(instructors + residents)
elif auth == "native":
    # pip install jupyterhub-nativeauthenticator. Residents sign up at /hub/signup; an admin
    # (DRYLAB_HUB_ADMINS) approves them at /hub/authorize. Usernames become unix users.
    drylab_hub.require_module("nativeauthenticator", "jupyterhub-nativeauthenticator")
    c.JupyterHub.authenticator_class = "native"
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = 12
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = 5
    c.Authenticator.allow_all = True  # sign-up approval is the allow list
elif auth == "ldap":
    # pip install jupyterhub-ldapauthenticator. Bind as the user over TLS; membership of the
    # listed groups (e.g. CN=drylab-residents,OU=Groups,DC=hospital,DC=org) grants access.
    drylab_hub.require_module("ldapauthenticator", "jupyterhub-ldapauthenticator")
    c.JupyterHub.authenticator_class = "ldap"
    c.LDAPAuthenticator.server_address = drylab_hub.require_env(
        "DRYLAB_LDAP_SERVER", "the LDAP / Active Directory host, e.g. ldap.hospital.org")
    c.LDAPAuthenticator.tls_strategy = "on_connect"
    # One template (a DN contains commas, so this variable is not a list).
    c.LDAPAuthenticator.bind_dn_template = [drylab_hub.require_env(
        "DRYLAB_LDAP_BIND_DN_TEMPLATE", "e.g. uid={username},ou=people,dc=hospital,dc=org")]
    # Group DNs separated by ';' (they contain commas).
    c.LDAPAuthenticator.allowed_groups = [
        g.strip() for g in os.environ.get("DRYLAB_LDAP_ALLOWED_GROUPS", "").split(";") if g.strip()]
    c.Authenticator.allowed_users = set(instructors + residents)
elif auth == "oauth":
    # pip install oauthenticator. OpenID Connect against the hospital's identity provider;
    # the client secret comes from OAUTH_CLIENT_SECRET (read by oauthenticator itself).
    drylab_hub.require_module("oauthenticator", "oauthenticator")
    c.JupyterHub.authenticator_class = "generic-oauth"
    c.GenericOAuthenticator.client_id = drylab_hub.require_env(
        "OAUTH_CLIENT_ID", "the client id registered with the identity provider")
    c.GenericOAuthenticator.oauth_callback_url = drylab_hub.require_env(
        "OAUTH_CALLBACK_URL", "https://<hub host>/hub/oauth_callback")
    c.GenericOAuthenticator.authorize_url = drylab_hub.require_env(
        "OAUTH2_AUTHORIZE_URL", "the provider's authorization endpoint")
    c.GenericOAuthenticator.token_url = drylab_hub.require_env(
        "OAUTH2_TOKEN_URL", "the provider's token endpoint")
    c.GenericOAuthenticator.userdata_url = drylab_hub.require_env(
        "OAUTH2_USERDATA_URL", "the provider's userinfo endpoint")
    c.GenericOAuthenticator.scope = ["openid", "profile", "groups"]
    # A unix-safe claim (the hospital login, not an e-mail address) becomes the user name.
    c.GenericOAuthenticator.username_claim = os.environ.get(
        "DRYLAB_OAUTH_USERNAME_CLAIM", "preferred_username")
    c.GenericOAuthenticator.auth_state_groups_key = "oauth_user.groups"
    c.GenericOAuthenticator.allowed_groups = set(drylab_hub.env_list("DRYLAB_OAUTH_ALLOWED_GROUPS"))
    c.Authenticator.allowed_users = set(instructors + residents)
else:
    raise drylab_hub.HubConfigError(
        f"DRYLAB_HUB_AUTH={auth!r} is not one of shared-password, pam, native, ldap, oauth")
c.Authenticator.admin_users = set(drylab_hub.env_list("DRYLAB_HUB_ADMINS"))

# --- the single-user servers ------------------------------------------------------------------
# The servers' Python: the hub's environment, or a thin copy every user can run (see
# user_env.py) in DRYLAB_USER_ENV_DIR (default: next to the state directory).
if spawner_kind == "simple":
    bin_dir, user_extra_env = Path(sys.prefix) / "bin", {}
else:
    bin_dir, user_extra_env = user_env.user_environment(
        os.environ.get("DRYLAB_USER_ENV_DIR", state_dir.parent / "user-env"))
c.Spawner.cmd = [str(bin_dir / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
# JupyterLab with widgets and nbgrader's extension takes a while to start on a busy 2-core host.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90


def _role(spawner):
    return "instructor" if spawner.user.name in instructors else "resident"


c.Spawner.environment = {
    # The notebooks' parameters cell reads this as the resident id, so each resident builds
    # their own cohort (docs/grading-model.md); grading injects the same id with papermill.
    "DRYLAB_RESIDENT_ID": lambda spawner: spawner.user.name,
    "DRYLAB_ROLE": _role,
    "JUPYTER_CONFIG_PATH": lambda spawner: drylab_hub.role_config_path(_role(spawner)),
    "DRYLAB_EXCHANGE_ROOT": str(exchange_root),
    "DRYLAB_COURSE_ID": drylab_hub.COURSE_ID,
    "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
    **user_extra_env,
}

if spawner_kind == "local":
    c.JupyterHub.spawner_class = "localprocess"

    def _ensure_account(spawner):
        drylab_hub.ensure_unix_user(spawner.user.name, create=create_users)

    c.Spawner.pre_spawn_hook = _ensure_account
    for name in instructors:
        drylab_hub.ensure_unix_user(name, create=create_users)
    drylab_hub.prepare_exchange(exchange_root, drylab_hub.COURSE_ID, owner=instructors[0])
elif spawner_kind == "simple":
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state_dir / "home" / "{username}")
    drylab_hub.prepare_exchange(exchange_root, drylab_hub.COURSE_ID, owner=None)
else:
    raise drylab_hub.HubConfigError(
        f"DRYLAB_HUB_SPAWNER={spawner_kind!r} is not one of local, simple")
