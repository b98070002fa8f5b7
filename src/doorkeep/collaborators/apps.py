from django.apps import AppConfig


class CollaboratorsConfig(AppConfig):
    name = "doorkeep.collaborators"
    label = "collaborators"
