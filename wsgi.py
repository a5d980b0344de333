"""`gunicorn wsgi:app`"""

from gateway import create_app

app = create_app()
