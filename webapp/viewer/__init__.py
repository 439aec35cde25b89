"""Browser pages of the CDI web app: views, figure builders (``figures``) and URLs."""
