"""URLs of the browser pages, included at the root by ``webapp/urls.py``."""

from django.urls import path

from webapp.viewer import views

app_name = "viewer"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("jobs.json", views.jobs_json, name="jobs_json"),
    path("datasets/upload/", views.dataset_upload, name="upload"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:pk>/figures.json", views.dataset_figures, name="dataset_figures"),
    path("jobs/new/", views.job_new, name="job_new"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/status.json", views.job_status, name="job_status"),
    path("jobs/<int:pk>/figures.json", views.job_figures, name="job_figures"),
    path("jobs/<int:pk>/isosurface.json", views.job_isosurface, name="job_isosurface"),
    path("jobs/<int:pk>/aligned.json", views.job_aligned, name="job_aligned"),
    path("jobs/<int:pk>/result.npz", views.job_npz, name="job_npz"),
    path("jobs/<int:pk>/object.vtk", views.job_vtk, name="job_vtk"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("compare/", views.compare, name="compare"),
    path("models/", views.models_list, name="models"),
    path("models/<int:pk>/<str:action>/", views.model_action, name="model_action"),
]
