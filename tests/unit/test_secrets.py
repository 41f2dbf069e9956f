"""Free-text redaction: passwords in URLs and conninfo never survive, the rest stays."""

from pg2iceberg.secrets import redact


def test_url_userinfo_and_query_passwords_are_hidden_and_the_rest_kept() -> None:
    text = "failed: postgresql://u:hunter2@127.0.0.1:1/db?password=x2&sslmode=require done"
    assert redact(text) == "failed: postgresql://u:***@127.0.0.1:1/db?password=***&sslmode=require done"


def test_conninfo_passwords_are_hidden() -> None:
    assert redact("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert redact("sslpassword=s3cr3t port=5") == "sslpassword=*** port=5"


def test_text_without_secrets_is_unchanged() -> None:
    text = 'connection to server at "127.0.0.1", port 1 failed: Connection refused'
    assert redact(text) == text
