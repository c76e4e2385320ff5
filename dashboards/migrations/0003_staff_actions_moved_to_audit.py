from django.db import migrations


class Migration(migrations.Migration):
    # Its rows were copied to audit.Action first.
    dependencies = [("dashboards", "0002_staff_actions"), ("audit", "0002_staff_actions_moved")]

    operations = [migrations.DeleteModel(name="StaffAction")]
